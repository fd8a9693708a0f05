"""Flux Kontext (FluxKontextPipeline): Flux that edits, conditioned on reference images.

Training conditions as the pipeline does at inference: each reference's cached latents are packed into 2x2 patches
and appended to the noisy target's tokens, with image ids whose first coordinate is 1 (the target's are 0); the
transformer sees both, and the prediction is the target's tokens only. Several references (conditioning_data naming
several reference datasets) are placed side by side as ComfyUI and SimpleTuner place them (each next to the last,
along the axis that keeps the whole layout squarest), so a multi-reference LoRA behaves the same there. Everything
else is Flux's: text side, caches, objective, LoRA targets and layouts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from dreamcore.models.families.denoisers import Conditioning
from dreamcore.models.families.flux import FAMILY as FLUX
from dreamcore.models.families.flux.denoiser import predict_flux
from dreamcore.models.families.flux.tiny import build_flux_kontext


def is_flux_kontext(index: Mapping[str, Any], denoiser: Mapping[str, Any]) -> bool:
    """A FluxKontextPipeline folder."""
    return index.get("_class_name") == "FluxKontextPipeline"


def reference_tokens(references, dtype):
    """(packed reference tokens [B, S', 4C], their ids [S', 3] with first coordinate 1) of references
    [(B, C, h, w), ...]: each packed as FluxKontextPipeline packs its image, placed after the previous ones."""
    import torch
    from diffusers import FluxKontextPipeline

    tokens, ids = [], []
    right = bottom = 0  # the extent, in latent cells, of the references placed so far
    for latents in references:
        size, channels, height, width = latents.shape
        tokens.append(FluxKontextPipeline._pack_latents(latents.to(dtype), size, channels, height, width))
        ids_of = FluxKontextPipeline._prepare_latent_image_ids(size, height // 2, width // 2, latents.device, dtype)
        top, left = (0, right) if height + bottom > width + right else (bottom, 0)
        ids_of[..., 0] = 1
        ids_of[..., 1] += top // 2
        ids_of[..., 2] += left // 2
        ids.append(ids_of)
        right, bottom = max(right, width + left), max(bottom, height + top)
    return torch.cat(tokens, dim=1), torch.cat(ids, dim=0)


def predict_kontext(transformer, noisy, timesteps, conditioning: Conditioning):
    """Flux's call with the references' tokens appended (FluxKontextPipeline's); the prediction of the target's
    tokens, unpacked to [B, C, h, w]. Without references it is Flux's call (Kontext also draws from text alone)."""
    if not conditioning.reference:
        return predict_flux(transformer, noisy, timesteps, conditioning)
    return predict_flux(transformer, noisy, timesteps, conditioning,
                        extra_tokens=reference_tokens(conditioning.reference, noisy.dtype))


FAMILY = replace(
    FLUX,
    name="kontext",
    detects=is_flux_kontext,
    pipeline_class="FluxKontextPipeline",
    predict=predict_kontext,
    conditions_on_references=True,
    tiny_model=build_flux_kontext,
)
