"""Stable Diffusion 1.x: one CLIP text encoder (768 wide in the real models), DDPM, a 4-channel VAE."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dreamcore.models.families.family import ModelFamily
from dreamcore.models.tiny_unets import TEXT_HIDDEN, PredictionType, Seeded, ddpm_scheduler, text_encoder, unet, vae
from dreamcore.models.tokenizer import byte_level_clip_tokenizer

# The stock pipeline would load the NSFW safety checker; dreamcore draws validation images without it.
NO_SAFETY_CHECKER = {"safety_checker": None, "requires_safety_checker": False}


def is_stable_diffusion(index: Mapping[str, Any], denoiser: Mapping[str, Any]) -> bool:
    """A StableDiffusionPipeline folder (SD 1.x, 2.x and small test models built like them)."""
    class_name = str(index.get("_class_name", ""))
    return class_name.startswith("StableDiffusion") and not class_name.startswith("StableDiffusionXL") \
        and denoiser.get("addition_embed_type") != "text_time"


def build_sd(seeded: Seeded, prediction_type: PredictionType = "epsilon"):
    """A tiny StableDiffusionPipeline (64 px images, 32x32x4 latents, one CLIP 32 wide)."""
    from diffusers import StableDiffusionPipeline

    tokenizer = byte_level_clip_tokenizer()
    return StableDiffusionPipeline(
        vae=vae(seeded, scaling_factor=0.18215),
        text_encoder=text_encoder(seeded, "text_encoder", tokenizer),
        tokenizer=tokenizer,
        unet=unet(seeded, cross_attention_dim=TEXT_HIDDEN),
        scheduler=ddpm_scheduler(prediction_type),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


FAMILY = ModelFamily(
    name="sd1",
    config_names=("sd1x", "sd2x", "legacy"),  # SD 1.x and 2.x share one architecture
    detects=is_stable_diffusion,
    pipeline_class="StableDiffusionPipeline",
    text_components=("text_encoder", "tokenizer"),
    pipeline_options=NO_SAFETY_CHECKER,
    preview_decoder="madebyollin/taesd",
    tiny_model=build_sd,
)
