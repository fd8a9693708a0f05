"""The SDXL refiner: an img2img model with only the second (OpenCLIP) text encoder, conditioned on
an aesthetic score instead of a target size, trained on the low-noise end of the timesteps."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dreamcore.models.families.family import ModelFamily
from dreamcore.models.families.objectives import DdpmObjective
from dreamcore.models.families.sdxl import is_sdxl_pipeline
from dreamcore.models.tiny_unets import TEXT_HIDDEN, Seeded, ddpm_scheduler, sdxl_unet, text_encoder, vae
from dreamcore.models.tokenizer import byte_level_clip_tokenizer


def is_sdxl_refiner(index: Mapping[str, Any], denoiser: Mapping[str, Any]) -> bool:
    """An SDXL folder that asks for an aesthetic score or lacks the first text encoder; real refiners
    also cross-attend to 1280-wide states (the base to 768 + 1280 = 2048)."""
    if not is_sdxl_pipeline(index, denoiser):
        return False
    entry = index.get("text_encoder")
    no_first_encoder = entry is None or (isinstance(entry, list) and entry[0] is None)
    return bool(index.get("requires_aesthetics_score")) or no_first_encoder or denoiser.get("cross_attention_dim") == 1280


def aesthetic_time_ids(row: Mapping[str, Any], aesthetic_score: float) -> list[float]:
    """[original h, w, crop top, left, aesthetic score] of one cached image."""
    return [row["original_height"], row["original_width"], row["crop_top"], row["crop_left"], aesthetic_score]


def build_sdxl_refiner(seeded: Seeded):
    """A tiny SDXL refiner (StableDiffusionXLImg2ImgPipeline, text_encoder_2 only, aesthetic score)."""
    from diffusers import StableDiffusionXLImg2ImgPipeline

    tokenizer = byte_level_clip_tokenizer()
    return StableDiffusionXLImg2ImgPipeline(
        vae=vae(seeded, scaling_factor=0.13025),
        text_encoder=None,
        text_encoder_2=text_encoder(seeded, "text_encoder_2", tokenizer, with_projection=True),
        tokenizer=None,
        tokenizer_2=tokenizer,
        # Time ids: original size (2), crop (2), aesthetic score (1) instead of a target size.
        unet=sdxl_unet(seeded, cross_attention_dim=TEXT_HIDDEN, time_ids=5),
        scheduler=ddpm_scheduler("epsilon"),
        requires_aesthetics_score=True,
        force_zeros_for_empty_prompt=False,
        add_watermarker=False,
    )


FAMILY = ModelFamily(
    name="sdxl-refiner",
    config_names=("sdxl",),
    detects=is_sdxl_refiner,
    pipeline_class="StableDiffusionXLImg2ImgPipeline",
    text_components=("text_encoder_2", "tokenizer_2"),
    pooled_text=True,
    time_ids=aesthetic_time_ids,
    prompt_hidden_layer=-2,
    # Its rows hold text_encoder_2 states only: they must never mix with the base's.
    text_cache_folder="text_embeds_refiner",
    refines_images=True,
    preview_decoder="madebyollin/taesdxl",
    objective=DdpmObjective(timestep_split="always"),
    tiny_model=build_sdxl_refiner,
)
