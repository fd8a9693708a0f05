"""The training loss: masks, per-sample error and the prior-preservation split (targets: models/families/objectives).

The error per element is SimpleTuner's (and diffusers' scheduled-Huber example's) `loss_type`: l2
(squared error), huber 2c(sqrt(d^2 + c^2) - c) or smooth_l1 2(sqrt(d^2 + c^2) - c), with d =
prediction - target and c per sample from `huber_schedule` (`huber_c_values`).

Shapes: latents and predictions [B, C, h, w]; masks [B, 1, h, w] (any spatial size in, latent size
out); per-sample losses [B].
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

    from dreamcore.config import TrainingConfig

# A mask whose area is (nearly) zero would divide by zero when normalising by area.
_MIN_MASK_AREA = 1e-6


@dataclass
class LossParts:
    """The loss to optimise and its parts for logging (None when a batch has no such sample)."""

    total: torch.Tensor  # scalar, with grad
    subject: float | None
    regularisation: float | None
    subject_count: int
    regularisation_count: int


def latent_mask(loss_mask, latent_size: tuple[int, int]):
    """A [B, 1, H, W] mask in [0, 1] at latent size [B, 1, h, w] (area interpolation keeps soft edges)."""
    import torch.nn.functional as F

    mask = loss_mask.float()
    if mask.dim() == 3:
        mask = mask.unsqueeze(1)
    if tuple(mask.shape[-2:]) != tuple(latent_size):
        mask = F.interpolate(mask, size=latent_size, mode="area")
    return mask.clamp(0.0, 1.0)


def elementwise_error(prediction, target, loss_type: str = "l2", huber_c=None):
    """The error per element [B, C, h, w]: l2, huber or smooth_l1 (huber_c: a float or per-sample [B])."""
    import torch

    difference = prediction.float() - target.float()
    if loss_type == "l2":
        return difference**2
    if loss_type not in ("huber", "smooth_l1"):
        raise ValueError(f"loss_type {loss_type!r} is not supported; use l2, huber or smooth_l1")
    c = torch.as_tensor(0.1 if huber_c is None else huber_c, dtype=torch.float32, device=difference.device)
    c = c.reshape(-1, *([1] * (difference.dim() - 1))) if c.dim() else c
    smooth = 2 * (torch.sqrt(difference**2 + c**2) - c)
    return c * smooth if loss_type == "huber" else smooth


def huber_c_values(config: TrainingConfig, timesteps, num_train_timesteps: int, alphas_cumprod=None):
    """Per-sample Huber c [B] for huber_schedule: constant (huber_c), exponential (huber_c^(t / T)) or snr
    ((1 - c) / (1 + r)^2 + c: DDPM r = sqrt((1 - alphas_cumprod) / alphas_cumprod) as diffusers' example; flow
    matching r = sqrt((1 - s) / (s + 1e-4)), s = t / 1000, SimpleTuner's formula); None for l2."""
    import torch

    if config.loss_type == "l2":
        return None
    base = config.huber_c
    steps = timesteps.float()
    if config.huber_schedule == "constant":
        return torch.full_like(steps, base)
    if config.huber_schedule == "exponential":
        alpha = -math.log(base) / num_train_timesteps
        return torch.exp(-alpha * steps)
    if alphas_cumprod is None:
        # Flow matching (timesteps = sigma x 1000) as SimpleTuner writes it; note that this ratio is the
        # signal-to-noise one, so c grows towards pure noise there, unlike the DDPM schedule. Kept for parity.
        sigmas = steps / 1000
        ratio = ((1.0 - sigmas) / (sigmas + 1e-4)) ** 0.5
    else:
        cumprod = alphas_cumprod.to(timesteps.device)[timesteps.long()].float()
        ratio = ((1.0 - cumprod) / cumprod) ** 0.5
    return (1 - base) / (1 + ratio) ** 2 + base


def per_sample_loss(prediction, target, mask=None, normalise_by_area: bool = False, loss_type: str = "l2",
                    huber_c=None):
    """The `loss_type` error averaged per sample [B], optionally weighted by a soft mask [B, 1, h, w]."""
    import torch

    error = elementwise_error(prediction, target, loss_type, huber_c)
    if mask is None:
        return error.mean(dim=(1, 2, 3))
    weighted = error * mask
    if normalise_by_area:
        area = mask.sum(dim=(1, 2, 3)) * error.shape[1]
        return weighted.sum(dim=(1, 2, 3)) / torch.clamp(area, min=_MIN_MASK_AREA)
    return weighted.mean(dim=(1, 2, 3))


def combine(losses, is_regularisation, prior_loss_weight: float, weights=None) -> LossParts:
    """Weighted mean over the batch: subject samples count 1, regularisation samples prior_loss_weight."""
    import torch

    if weights is not None:
        losses = losses * weights
    reg = is_regularisation if is_regularisation is not None else torch.zeros_like(losses, dtype=torch.bool)
    reg = reg.to(losses.device).bool()
    sample_weights = torch.where(reg, torch.full_like(losses, prior_loss_weight), torch.ones_like(losses))
    total = (losses * sample_weights).sum() / losses.shape[0]
    subject_count, reg_count = int((~reg).sum()), int(reg.sum())
    detached = losses.detach()
    return LossParts(
        total=total,
        subject=float(detached[~reg].mean()) if subject_count else None,
        regularisation=float(detached[reg].mean()) if reg_count else None,
        subject_count=subject_count,
        regularisation_count=reg_count,
    )
