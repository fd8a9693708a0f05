"""Flux.1 (dev/schnell shape): a transformer over packed 2x2 patches of a 16-channel VAE's latents, conditioned
on T5 states and CLIP-L's pooled output, with a guidance embedding (dev), trained by flow matching."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dreamcore.models.families.captions import encode_flux_captions
from dreamcore.models.families.family import ModelFamily


def is_flux(index: Mapping[str, Any], denoiser: Mapping[str, Any]) -> bool:
    """A FluxPipeline folder (or one whose transformer is a Flux transformer)."""
    return str(index.get("_class_name", "")).startswith("Flux") or denoiser.get("_class_name") == "FluxTransformer2DModel"


FAMILY = ModelFamily(
    name="flux",
    config_names=("flux",),
    detects=is_flux,
    pipeline_class="FluxPipeline",
    text_components=("text_encoder", "tokenizer", "text_encoder_2", "tokenizer_2"),
    denoiser="transformer",
    pooled_text=True,
    preview_decoder="madebyollin/taef1",
    # Caches area
    ddpm_samplers=False,
    encode_captions=encode_flux_captions,
    t5_tokenizer="tokenizer_2",
)
