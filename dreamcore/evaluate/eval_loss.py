"""Stable eval loss: the denoising loss of fixed eval samples at fixed timesteps with fixed noise.

The training loss jumps around because every step draws new timesteps and noise. Here every
evaluation uses the same timesteps (eval_timesteps) and, per sample, the same noise (seeded by the
sample's position and the eval seed), so the same weights always give the same number and a
change means the weights changed ("Demystifying SD fine-tuning"). The loss is plain MSE against
the family objective's target (epsilon / v; flow matching: noise - latents at the fixed sigma
timestep / num_train_timesteps), masked like training when a sample has a loss mask, without min-SNR
weights; the mean over timesteps is the headline figure. The denoiser is called through its family
(`family.predict`; Flux at a fixed guidance).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dreamcore.models.families.denoisers import Conditioning, predict_unet
from dreamcore.models.families.objectives import DdpmObjective
from dreamcore.train.losses import latent_mask, per_sample_loss

if TYPE_CHECKING:
    from dreamcore.cache.batch import TrainingBatch
    from dreamcore.models import ModelFamily


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
                      timesteps: Sequence[int], seed: int = 0, device=None, *, family: ModelFamily | None = None,
                      guidance: float | None = None, attention_masked: bool = False) -> EvalLoss:
    """Eval loss of `unet` (the family's denoiser, adapter applied) on `batches` at `timesteps`, noise fixed by `seed`.

    `family` says how to noise and call it (default: a DDPM UNet); `guidance` is the fixed guidance of a
    guidance-distilled Flux; `attention_masked`: the batches' text attention masks go with the conditioning
    (the family's `text_attention_masked`). The denoiser runs in eval mode (no dropout) without gradients; its training
    flag is restored.
    """
    import torch
    from tqdm.auto import tqdm

    if not batches:
        raise ValueError("no eval samples: add a dataset_type 'eval' dataset or set eval_dataset_fraction")
    device = device or next(unet.parameters()).device
    dtype = next(unet.parameters()).dtype
    was_training = unet.training
    unet.eval()
    sums = {int(t): 0.0 for t in timesteps}
    count = 0
    call = _DenoiserCall(unet, noise_scheduler, prediction_type, family, guidance, dtype, attention_masked)
    # One tick per (batch, timestep) denoiser call: big eval images at many timesteps take minutes.
    bar = tqdm(total=len(batches) * len(sums), desc="eval loss", unit="call", disable=None)
    try:
        with torch.no_grad():
            for number, batch in enumerate(batches):
                losses = _batch_losses(call, batch, timesteps, seed * 1_000_003 + number, device, bar.update)
                for t, value in losses.items():
                    sums[t] += value
                count += batch.size
    finally:
        bar.close()
        unet.train(was_training)
    per_timestep = {t: s / count for t, s in sorted(sums.items())}
    return EvalLoss(per_timestep, statistics.fmean(per_timestep.values()), count)


@dataclass(frozen=True)
class _DenoiserCall:
    """The denoiser with what noising and calling it need."""

    unet: object
    noise_scheduler: object
    prediction_type: str
    family: ModelFamily | None
    guidance: float | None
    dtype: object
    attention_masked: bool = False

    def objective(self):
        return self.family.objective if self.family is not None else DdpmObjective()

    def predict(self, noisy, timesteps, conditioning):
        predict = self.family.predict if self.family is not None else predict_unet
        return predict(self.unet, noisy.to(self.dtype), timesteps, conditioning.to(self.dtype))


def _batch_losses(call: _DenoiserCall, batch, timesteps, seed, device,
                  on_timestep: Callable[[], object] = lambda: None) -> dict[int, float]:
    """Sum over the batch's samples of the loss at each timestep."""
    import torch

    batch = batch.to(device)
    latents = batch.latents.float()
    # CPU generator: the same noise on every device and machine.
    noise = torch.randn(latents.shape, generator=torch.Generator().manual_seed(seed)).to(device)
    mask = None if batch.loss_mask is None else latent_mask(batch.loss_mask, tuple(latents.shape[-2:]))
    guidance = None if call.guidance is None else torch.full((batch.size,), float(call.guidance), device=device)
    text_mask = batch.prompt_attention_mask if call.attention_masked else None
    image, level = None, None
    if call.family is not None and call.family.image_conditioning is not None:  # an upscaler's low-res input
        image, level = call.family.image_conditioning(latents, torch.Generator().manual_seed(seed + 1))
        image, level = image.to(device), level.to(device)
    conditioning = Conditioning(batch.prompt_embeds, batch.pooled_prompt_embeds, batch.time_ids, guidance, text_mask,
                                image, level, batch.reference)
    objective = call.objective()
    out = {}
    for t in timesteps:
        noised = objective.at(call.noise_scheduler, latents, noise, int(t), call.prediction_type)
        prediction = call.predict(noised.noisy, noised.timesteps, conditioning)
        out[int(t)] = float(per_sample_loss(prediction, noised.target, mask).sum())
        on_timestep()
    return out
