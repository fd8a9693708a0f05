"""Stable eval loss: the denoising loss of fixed eval samples at fixed timesteps with fixed noise.

The training loss jumps around because every step draws new timesteps and noise. Here every
evaluation uses the same timesteps (eval_timesteps) and, per sample, the same noise (seeded by the
sample's position and the eval seed), so the same weights always give the same number and a
change means the weights changed ("Demystifying SD fine-tuning"). The loss is plain MSE against
the epsilon / v target, masked like training when a sample has a loss mask, without min-SNR
weights; the mean over timesteps is the headline figure.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dreamcore.cache.batch import TrainingBatch


@dataclass(frozen=True)
class EvalLoss:
    """Per-timestep mean loss over the eval samples, and their mean."""

    per_timestep: dict[int, float]
    mean: float
    samples: int

    def as_dict(self) -> dict:
        return {"per_timestep": {str(t): v for t, v in self.per_timestep.items()}, "mean": self.mean,
                "samples": self.samples}

    @classmethod
    def from_dict(cls, value: dict) -> EvalLoss:
        return cls({int(t): float(v) for t, v in value["per_timestep"].items()}, float(value["mean"]),
                   int(value["samples"]))


def eval_timesteps(spec: int | Sequence[int], num_train_timesteps: int) -> list[int]:
    """The timesteps to evaluate: a count spread evenly (bin centres) or an explicit list, checked."""
    if isinstance(spec, int):
        count = min(spec, num_train_timesteps)
        return sorted({int((i + 0.5) * num_train_timesteps / count) for i in range(count)})
    bad = [t for t in spec if not 0 <= int(t) < num_train_timesteps]
    if bad:
        raise ValueError(f"eval_timesteps {bad} are outside the schedule [0, {num_train_timesteps - 1}]")
    return sorted({int(t) for t in spec})


def compute_eval_loss(unet, noise_scheduler, prediction_type: str, batches: Sequence[TrainingBatch],
                      timesteps: Sequence[int], seed: int = 0, device=None) -> EvalLoss:
    """Eval loss of `unet` (adapter applied) on `batches` at `timesteps`, noise fixed by `seed`.

    The UNet runs in eval mode (no dropout) without gradients; its training flag is restored.
    """
    import torch

    if not batches:
        raise ValueError("no eval samples: add a dataset_type 'eval' dataset or set eval_dataset_fraction")
    device = device or next(unet.parameters()).device
    dtype = next(unet.parameters()).dtype
    was_training = unet.training
    unet.eval()
    sums = {int(t): 0.0 for t in timesteps}
    count = 0
    try:
        with torch.no_grad():
            for number, batch in enumerate(batches):
                losses = _batch_losses(unet, noise_scheduler, prediction_type, batch, timesteps,
                                       seed * 1_000_003 + number, device, dtype)
                for t, value in losses.items():
                    sums[t] += value
                count += batch.size
    finally:
        unet.train(was_training)
    per_timestep = {t: s / count for t, s in sorted(sums.items())}
    return EvalLoss(per_timestep, statistics.fmean(per_timestep.values()), count)


def _batch_losses(unet, noise_scheduler, prediction_type, batch, timesteps, seed, device, dtype) -> dict[int, float]:
    """Sum over the batch's samples of the loss at each timestep."""
    import torch

    from dreamcore.train.losses import latent_mask, per_sample_loss, prediction_target

    batch = batch.to(device)
    latents = batch.latents.float()
    # CPU generator: the same noise on every device and machine.
    noise = torch.randn(latents.shape, generator=torch.Generator().manual_seed(seed)).to(device)
    mask = None if batch.loss_mask is None else latent_mask(batch.loss_mask, tuple(latents.shape[-2:]))
    added = None
    if batch.pooled_prompt_embeds is not None:
        added = {"text_embeds": batch.pooled_prompt_embeds.to(dtype), "time_ids": batch.time_ids.to(dtype)}
    out = {}
    for t in timesteps:
        steps = torch.full((batch.size,), int(t), dtype=torch.long, device=device)
        noisy = noise_scheduler.add_noise(latents, noise, steps)
        target = prediction_target(noise_scheduler, latents, noise, steps, prediction_type)
        prediction = unet(noisy.to(dtype), steps, encoder_hidden_states=batch.prompt_embeds.to(dtype),
                          added_cond_kwargs=added, return_dict=False)[0]
        out[int(t)] = float(per_sample_loss(prediction, target, mask).sum())
    return out
