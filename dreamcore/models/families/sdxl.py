"""SDXL base: two CLIP text encoders (penultimate states concatenated, pooled output of the second)
and size/crop micro-conditioning: time ids (original h, w, crop top, left, target h, w)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dreamcore.models.families.family import ModelFamily
from dreamcore.models.families.objectives import DdpmObjective
from dreamcore.models.tiny_unets import (
    TEXT_HIDDEN,
    PredictionType,
    Seeded,
    ddpm_scheduler,
    sdxl_unet,
    text_encoder,
    vae,
)
from dreamcore.models.tokenizer import byte_level_clip_tokenizer


def is_sdxl_pipeline(index: Mapping[str, Any], denoiser: Mapping[str, Any]) -> bool:
    """An SDXL pipeline folder, base or refiner (its UNet takes text_time added conditioning)."""
    return "StableDiffusionXL" in str(index.get("_class_name", "")) or denoiser.get("addition_embed_type") == "text_time"


def size_time_ids(row: Mapping[str, Any], aesthetic_score: float) -> list[float]:
    """[original h, w, crop top, left, target h, w] of one cached image."""
    return [row["original_height"], row["original_width"], row["crop_top"], row["crop_left"],
            row["target_height"], row["target_width"]]


def build_sdxl(seeded: Seeded, prediction_type: PredictionType = "epsilon"):
    """A tiny StableDiffusionXLPipeline (two text encoders, text_time conditioning)."""
    from diffusers import StableDiffusionXLPipeline

    tokenizer = byte_level_clip_tokenizer()
    return StableDiffusionXLPipeline(
        vae=vae(seeded, scaling_factor=0.13025),
        text_encoder=text_encoder(seeded, "text_encoder", tokenizer),
        text_encoder_2=text_encoder(seeded, "text_encoder_2", tokenizer, with_projection=True),
        tokenizer=tokenizer,
        tokenizer_2=tokenizer,
        # Both encoders' penultimate hidden states are concatenated: 32 + 32.
        unet=sdxl_unet(seeded, cross_attention_dim=2 * TEXT_HIDDEN, time_ids=6),
        scheduler=ddpm_scheduler(prediction_type),
        add_watermarker=False,
    )


FAMILY = ModelFamily(
    name="sdxl",
    config_names=("sdxl",),
    detects=is_sdxl_pipeline,
    pipeline_class="StableDiffusionXLPipeline",
    text_components=("text_encoder", "tokenizer", "text_encoder_2", "tokenizer_2"),
    pooled_text=True,
    time_ids=size_time_ids,
    prompt_hidden_layer=-2,
    preview_decoder="madebyollin/taesdxl",
    objective=DdpmObjective(timestep_split="on_request"),
    tiny_model=build_sdxl,
)
