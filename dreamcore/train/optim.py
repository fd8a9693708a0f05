"""The optimiser (by SimpleTuner's names, from maintained packages) and the learning-rate schedule.

Names and the packages behind them are listed in dreamcore.config.options.train.OPTIMIZERS (the config
refuses a name whose package is not installed); this module maps each to its class and arguments:
torch (adamw, torch-adam, torch-sgd), torch-optimi (adamw_bf16 = optimi AdamW with Kahan summation, the
maintained form of SimpleTuner's bf16 AdamW; optimi-*), prodigyopt (prodigy), schedulefree
(adamw_schedulefree) and bitsandbytes (adamw8bit, bnb-*; CUDA only). `optimizer_config` ("k=v,k=v")
overrides any argument.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import math
from typing import TYPE_CHECKING

from dreamcore.config.options.train import SCHEDULE_FREE_OPTIMIZERS, UNCLIPPED_OPTIMIZERS, parse_optimizer_config

if TYPE_CHECKING:
    import torch

    from dreamcore.config import TrainingConfig

logger = logging.getLogger(__name__)

# name -> (module, class, keyword arguments beyond lr, as (name, config field or fixed value)).
_ADAM = {"betas": ("adam_beta1", "adam_beta2"), "weight_decay": "adam_weight_decay", "eps": "adam_epsilon"}
_NO_EPS = {"betas": ("adam_beta1", "adam_beta2"), "weight_decay": "adam_weight_decay"}
_OPTIMI_CLASSES = {"optimi-adam": "Adam", "optimi-adamw": "AdamW", "optimi-stableadamw": "StableAdamW",
                   "optimi-lion": "Lion", "optimi-radam": "RAdam", "optimi-ranger": "Ranger", "optimi-adan": "Adan",
                   "optimi-sgd": "SGD"}
_BNB_CLASSES = {"adamw8bit": "AdamW8bit", "bnb-adam": "Adam", "bnb-adam8bit": "Adam8bit", "bnb-adamw": "AdamW",
                "bnb-adamw-paged": "PagedAdamW", "bnb-adamw8bit-paged": "PagedAdamW8bit", "bnb-lion": "Lion",
                "bnb-lion8bit": "Lion8bit", "bnb-lion-paged": "PagedLion", "bnb-lion8bit-paged": "PagedLion8bit",
                "bnb-adagrad": "Adagrad", "bnb-adagrad8bit": "Adagrad8bit"}


def resolve_optimizer(config: TrainingConfig, device) -> str:
    """The optimizer name to build: auto picks bitsandbytes' 8-bit AdamW only on CUDA with bitsandbytes, else
    adamw; a bitsandbytes optimizer off CUDA is an error."""
    import torch

    bitsandbytes = importlib.util.find_spec("bitsandbytes") is not None
    on_cuda = torch.device(device).type == "cuda"
    if config.optimizer == "auto":
        return "adamw8bit" if bitsandbytes and on_cuda else "adamw"
    if config.optimizer in _BNB_CLASSES and not (bitsandbytes and on_cuda):
        raise RuntimeError(
            f"optimizer {config.optimizer!r} needs bitsandbytes (pip install bitsandbytes) and a CUDA GPU; "
            f"this run trains on {device}{'' if bitsandbytes else ' without bitsandbytes'}. "
            "Use optimizer 'adamw' or an optimi-* one."
        )
    return config.optimizer


def is_schedule_free(config: TrainingConfig) -> bool:
    """Whether the optimizer keeps its own schedule and must be switched with train() / eval()."""
    return config.optimizer in SCHEDULE_FREE_OPTIMIZERS


def make_optimizer(config: TrainingConfig, params: list[torch.nn.Parameter], device) -> torch.optim.Optimizer:
    """The configured optimizer over `params`, with the config's learning rate and Adam settings."""
    import torch

    choice = resolve_optimizer(config, device)
    logger.info("optimizer: %s over %d tensors", choice, len(params))
    if choice == "adamw":
        options = _options(config, _ADAM) | parse_optimizer_config(config.optimizer_config)
        return torch.optim.AdamW(params, lr=config.learning_rate, **({"fused": fused_kernel_fits(params)} | options))
    cls, arguments = _optimizer_class(choice)
    options = _options(config, arguments) | parse_optimizer_config(config.optimizer_config)
    if choice in SCHEDULE_FREE_OPTIMIZERS:
        options.setdefault("warmup_steps", config.lr_warmup_steps)  # it warms up itself (the scheduler stays flat)
    if choice == "prodigy" and config.learning_rate < 0.1:
        logger.warning("prodigy estimates the step size itself and expects learning_rate near 1.0; it is %g",
                       config.learning_rate)
    return cls(params, lr=config.learning_rate, **options)


def _optimizer_class(choice: str):
    """(class, keyword arguments) of a non-default optimizer name."""
    import torch

    if choice == "torch-adam":
        return torch.optim.Adam, _ADAM
    if choice == "torch-sgd":
        return torch.optim.SGD, {"weight_decay": "adam_weight_decay"}
    if choice == "adamw_bf16":  # Kahan summation keeps bf16 weights' small updates, as SimpleTuner's AdamWBF16
        return importlib.import_module("optimi").AdamW, _ADAM | {"kahan_sum": True}
    if choice in _OPTIMI_CLASSES:
        optimi = importlib.import_module("optimi")
        own_betas = {"weight_decay": "adam_weight_decay", "eps": "adam_epsilon"}  # Adan has three betas
        arguments = {"optimi-lion": _NO_EPS, "optimi-sgd": {"weight_decay": "adam_weight_decay"},
                     "optimi-adan": own_betas}.get(choice, _ADAM)
        return getattr(optimi, _OPTIMI_CLASSES[choice]), arguments
    if choice == "prodigy":
        return importlib.import_module("prodigyopt").Prodigy, _ADAM
    if choice == "adamw_schedulefree":
        return importlib.import_module("schedulefree").AdamWScheduleFree, _ADAM
    if choice in _BNB_CLASSES:
        optim = importlib.import_module("bitsandbytes.optim")
        return getattr(optim, _BNB_CLASSES[choice]), _NO_EPS if "lion" in choice else _ADAM
    raise ValueError(f"optimizer {choice!r} has no class here")  # the config's list and this module disagree


def _options(config: TrainingConfig, arguments: dict) -> dict:
    """Keyword arguments from config fields (a field name, a pair of them, or a fixed value)."""
    options = {}
    for name, source in arguments.items():
        if isinstance(source, tuple):
            options[name] = tuple(getattr(config, field) for field in source)
        elif isinstance(source, str):
            options[name] = getattr(config, source)
        else:
            options[name] = source
    return options


def fused_kernel_fits(params: list[torch.nn.Parameter]) -> bool:
    """Whether torch's fused AdamW takes these tensors: one kernel per step instead of ~10 ops per tensor.

    torch loops over the tensors on CPU unless asked; for a full fine-tune that loop is a large
    part of the step (SD 1.5 on CPU: 2.5-4 s of ~26 s, see benchmarks/results/train_speed_sd15.md).
    """
    import torch

    kinds = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
    return all(p.device.type in ("cpu", "cuda") and p.dtype in kinds for p in params)


def make_lr_scheduler(config: TrainingConfig, optimizer):
    """The configured schedule over max_train_steps optimiser steps, with linear warm-up.

    diffusers' get_scheduler for its names (polynomial decays to lr_end), transformers' cosine_with_min_lr
    (to lr_end), SimpleTuner's sine as a LambdaLR; a schedule-free optimizer keeps a constant one (it warms
    up itself), as SimpleTuner does.
    """
    from diffusers.optimization import get_polynomial_decay_schedule_with_warmup, get_scheduler

    steps = max(config.max_train_steps, 1)
    name = config.lr_scheduler
    if is_schedule_free(config):
        if name != "constant":
            logger.info("%s schedules its own learning rate: lr_scheduler %s is not used", config.optimizer, name)
        return get_scheduler("constant", optimizer=optimizer)
    if name == "polynomial":
        return get_polynomial_decay_schedule_with_warmup(optimizer, config.lr_warmup_steps, steps,
                                                         lr_end=config.lr_end, power=config.lr_power)
    if name == "cosine_with_min_lr":
        from transformers import get_scheduler as transformers_scheduler

        return transformers_scheduler(name, optimizer=optimizer, num_warmup_steps=config.lr_warmup_steps,
                                      num_training_steps=steps,
                                      scheduler_specific_kwargs={"min_lr": config.lr_end})
    if name == "sine":
        return sine_schedule(optimizer, config.learning_rate, config.lr_end, config.lr_warmup_steps)
    return get_scheduler(name, optimizer=optimizer, num_warmup_steps=config.lr_warmup_steps,
                         num_training_steps=steps, num_cycles=config.lr_num_cycles, power=config.lr_power)


def sine_schedule(optimizer, learning_rate: float, lr_end: float, period_half: int):
    """SimpleTuner's sine: lr_end + (lr - lr_end) (1 + sin(pi step / T)) / 2, T = lr_warmup_steps."""
    from torch.optim.lr_scheduler import LambdaLR

    low = lr_end / learning_rate

    def factor(step: int) -> float:
        return low + (1.0 - low) * 0.5 * (1.0 + math.sin(math.pi * step / period_half))

    return LambdaLR(optimizer, factor)


def clip_gradients(accelerator, params, config: TrainingConfig) -> None:
    """Clip the gradients before a step as SimpleTuner does: by value (each element to +-max_grad_norm) or by
    total norm, as grad_clip_method says; max_grad_norm 0 and the optimizers that bound their own updates
    (UNCLIPPED_OPTIMIZERS) clip nothing."""
    if config.max_grad_norm <= 0 or config.optimizer in UNCLIPPED_OPTIMIZERS:
        return
    if config.grad_clip_method == "value":
        accelerator.clip_grad_value_(params, config.max_grad_norm)
    else:
        accelerator.clip_grad_norm_(params, config.max_grad_norm)
