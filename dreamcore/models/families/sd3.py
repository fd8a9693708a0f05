"""Stable Diffusion 3: an MMDiT transformer over a 16-channel VAE (with its shift and scale), conditioned
on CLIP-L + CLIP-G (penultimate states, pooled outputs concatenated) and T5, trained by flow matching."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dreamcore.models.families.captions import encode_sd3_captions
from dreamcore.models.families.family import ModelFamily


def is_sd3(index: Mapping[str, Any], denoiser: Mapping[str, Any]) -> bool:
    """A StableDiffusion3Pipeline folder (or one whose transformer is an SD3 MMDiT)."""
    return str(index.get("_class_name", "")).startswith("StableDiffusion3") \
        or denoiser.get("_class_name") == "SD3Transformer2DModel"


FAMILY = ModelFamily(
    name="sd3",
    config_names=("sd3",),
    detects=is_sd3,
    pipeline_class="StableDiffusion3Pipeline",
    text_components=("text_encoder", "tokenizer", "text_encoder_2", "tokenizer_2", "text_encoder_3", "tokenizer_3"),
    denoiser="transformer",
    pooled_text=True,
    prompt_hidden_layer=-2,
    preview_decoder="madebyollin/taesd3",
    # Caches area
    ddpm_samplers=False,
    encode_captions=encode_sd3_captions,
    t5_tokenizer="tokenizer_3",
)
