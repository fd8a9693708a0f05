"""The training loss: masks, per-sample MSE and the prior-preservation split (targets: models/families/objectives).

Shapes: latents and predictions [B, C, h, w]; masks [B, 1, h, w] (any spatial size in, latent size
out); per-sample losses [B].
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

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


def per_sample_loss(prediction, target, mask=None, normalise_by_area: bool = False):
    """Mean squared error per sample [B], optionally weighted by a soft mask [B, 1, h, w]."""
    import torch

    error = (prediction.float() - target.float()) ** 2
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
