"""The optimiser (AdamW: torch, or bitsandbytes 8-bit) and the learning-rate schedule with warm-up."""

from __future__ import annotations

import importlib.util
import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

    from dreamcore.config import TrainingConfig

logger = logging.getLogger(__name__)


def resolve_optimizer(config: TrainingConfig, device) -> str:
    """'adamw' or 'adamw8bit': auto picks 8-bit only where bitsandbytes is installed and a CUDA GPU trains."""
    import torch

    bitsandbytes = importlib.util.find_spec("bitsandbytes") is not None
    on_cuda = torch.device(device).type == "cuda"
    if config.optimizer == "auto":
        return "adamw8bit" if bitsandbytes and on_cuda else "adamw"
    if config.optimizer == "adamw8bit" and not (bitsandbytes and on_cuda):
        raise RuntimeError(
            "optimizer 'adamw8bit' needs bitsandbytes (pip install bitsandbytes) and a CUDA GPU; "
            f"this run trains on {device}{'' if bitsandbytes else ' without bitsandbytes'}. Use optimizer 'adamw'."
        )
    return config.optimizer


def make_optimizer(config: TrainingConfig, params: list[torch.nn.Parameter], device) -> torch.optim.Optimizer:
    """AdamW over `params` with the config's learning rate, betas, weight decay and epsilon."""
    import torch

    options = dict(lr=config.learning_rate, betas=(config.adam_beta1, config.adam_beta2),
                   weight_decay=config.adam_weight_decay, eps=config.adam_epsilon)
    choice = resolve_optimizer(config, device)
    logger.info("optimizer: %s over %d tensors", choice, len(params))
    if choice == "adamw8bit":
        import bitsandbytes

        return bitsandbytes.optim.AdamW8bit(params, **options)
    return torch.optim.AdamW(params, **options, fused=fused_kernel_fits(params))


def fused_kernel_fits(params: list[torch.nn.Parameter]) -> bool:
    """Whether torch's fused AdamW takes these tensors: one kernel per step instead of ~10 ops per tensor.

    torch loops over the tensors on CPU unless asked; for a full fine-tune that loop is a large
    part of the step (SD 1.5 on CPU: 2.5-4 s of ~26 s, see benchmarks/results/train_speed_sd15.md).
    """
    import torch

    kinds = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
    return all(p.device.type in ("cpu", "cuda") and p.dtype in kinds for p in params)


def make_lr_scheduler(config: TrainingConfig, optimizer):
    """diffusers' get_scheduler: warm-up, then the configured schedule over max_train_steps optimiser steps."""
    from diffusers.optimization import get_scheduler

    return get_scheduler(
        config.lr_scheduler,
        optimizer=optimizer,
        num_warmup_steps=config.lr_warmup_steps,
        num_training_steps=max(config.max_train_steps, 1),
        num_cycles=config.lr_num_cycles,
        power=config.lr_power,
    )
