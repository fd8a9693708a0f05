"""Kolors: an SDXL-shaped UNet conditioned on ChatGLM3 (penultimate states, projected by the UNet; pooled =
the last token of the final states) with SDXL's size time ids, trained as a DDPM model (its scheduler's
1100 steps).

Captions encode with KolorsPipeline.encode_prompt at its 256 tokens (or tokenizer_max_length, which
validation passes to the pipeline too), into their own text-cache folder: ChatGLM rows never mix with CLIP
rows. The tiny model is in tiny.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from dreamcore.config.options.families import KolorsOptions
from dreamcore.models.families.captions import CaptionSettings, EncodedCaptions, sequence_length
from dreamcore.models.families.family import ModelFamily
from dreamcore.models.families.kolors.tiny import build_kolors
from dreamcore.models.families.sdxl import size_time_ids

if TYPE_CHECKING:
    from dreamcore.config import TrainingConfig


def is_kolors(index: Mapping[str, Any], denoiser: Mapping[str, Any]) -> bool:
    """A KolorsPipeline folder (or any pipeline whose text encoder is Kolors' ChatGLM)."""
    encoder = index.get("text_encoder")
    return str(index.get("_class_name", "")).startswith("Kolors") or (
        isinstance(encoder, list) and len(encoder) == 2 and encoder[1] == "ChatGLMModel")


def chatglm_caption_settings(config: TrainingConfig, caption_dropout: bool) -> CaptionSettings:
    """ChatGLM's sequence length: tokenizer_max_length when set, else the pipeline's 256."""
    return CaptionSettings(config.tokenizer_max_length)


def chatglm_caption_key(settings: CaptionSettings) -> dict:
    """A set sequence length enters the text encoder's fingerprint (unset: rows keyed as at 256)."""
    return {"chatglm": {"tokenizer_max_length": settings.max_sequence_length}} if settings.max_sequence_length else {}


def encode_chatglm_captions(pipe, captions: list[str], settings: CaptionSettings) -> EncodedCaptions:
    """KolorsPipeline.encode_prompt: ChatGLM3's penultimate states [B, L, D] (left-padded, no mask: the UNet
    attends to every token) and the last token of its final states as the pooled embedding [B, D]."""
    import torch

    with torch.no_grad():
        embeds, _, pooled, _ = pipe.encode_prompt(
            prompt=captions, device=pipe._execution_device, num_images_per_prompt=1, do_classifier_free_guidance=False,
            max_sequence_length=sequence_length(pipe, settings),
        )
    return EncodedCaptions(embeds.float().cpu(), pooled.float().cpu())


FAMILY = ModelFamily(
    name="kolors",
    config_names=("kolors",),
    detects=is_kolors,
    pipeline_class="KolorsPipeline",
    text_components=("text_encoder", "tokenizer"),
    pooled_text=True,
    time_ids=size_time_ids,
    prompt_hidden_layer=-2,
    text_cache_folder="text_embeds_kolors",
    preview_decoder="madebyollin/taesdxl",  # Kolors' VAE is SDXL's
    lora_layouts={},  # diffusers_lora only: KolorsPipeline.load_lora_weights reads it
    encode_captions=encode_chatglm_captions,
    caption_settings=chatglm_caption_settings,
    caption_key=chatglm_caption_key,
    sequence_tokenizer="tokenizer",
    options=(KolorsOptions,),
    tiny_model=build_kolors,
)
