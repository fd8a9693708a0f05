"""Kolors: an SDXL-shaped UNet conditioned on ChatGLM3 (penultimate states, projected by the UNet; pooled =
the last token of the final states) with SDXL's size time ids, trained as a DDPM model (its scheduler's
1100 steps).

Captions encode with KolorsPipeline.encode_prompt (the UNet families' encoder reads its 4-tuple) at its
256 tokens, the length KolorsPipeline draws with (its __call__ does not hand max_sequence_length on to
encode_prompt, so tokenizer_max_length is not honoured: rows at another length would not match the drawing),
into their own text-cache folder: ChatGLM rows never mix with CLIP rows. The tiny model is in tiny.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dreamcore.models.families.family import ModelFamily
from dreamcore.models.families.kolors.tiny import build_kolors
from dreamcore.models.families.sdxl import size_time_ids


def is_kolors(index: Mapping[str, Any], denoiser: Mapping[str, Any]) -> bool:
    """A KolorsPipeline folder (or any pipeline whose text encoder is Kolors' ChatGLM)."""
    encoder = index.get("text_encoder")
    return str(index.get("_class_name", "")).startswith("Kolors") or (
        isinstance(encoder, list) and len(encoder) == 2 and encoder[1] == "ChatGLMModel")


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
    tiny_model=build_kolors,
)
