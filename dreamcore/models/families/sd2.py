"""Stable Diffusion 2.x: SD 1.x's architecture conditioned on OpenCLIP ViT-H (1024 wide); often v-prediction."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dreamcore.models.families.family import ModelFamily
from dreamcore.models.families.sd1 import NO_SAFETY_CHECKER, is_stable_diffusion


def is_sd2(index: Mapping[str, Any], denoiser: Mapping[str, Any]) -> bool:
    """A StableDiffusionPipeline whose UNet cross-attends to 1024-wide states."""
    return is_stable_diffusion(index, denoiser) and denoiser.get("cross_attention_dim") == 1024


FAMILY = ModelFamily(
    name="sd2",
    config_names=("sd2x", "sd1x", "legacy"),
    detects=is_sd2,
    pipeline_class="StableDiffusionPipeline",
    text_components=("text_encoder", "tokenizer"),
    pipeline_options=NO_SAFETY_CHECKER,
    preview_decoder="madebyollin/taesd",
)
