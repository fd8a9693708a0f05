"""Lumina-Image 2.0 (Alpha-VLLM/Lumina-Image-2.0, neta-lumina): a single-stream transformer over 2x2 patches of
Flux's 16-channel VAE latents, conditioned on Gemma2's penultimate states through their attention mask, trained by
flow matching with Lumina's reversed time.

As Lumina2Pipeline and SimpleTuner's lumina2 model do it:
- captions: Lumina2Pipeline.encode_prompt with its system prompt before every caption ("<system prompt> <Prompt
  Start> <caption>"), at `tokenizer_max_length` Gemma tokens (default: the pipeline's 256), with Gemma's mask; the
  transformer always attends through that mask;
- the transformer is given t = 1 - sigma (Lumina's time runs from noise at 0 to the image at 1) and predicts the
  velocity towards the image, latents - noise, so its output is negated into flow matching's target noise - latents
  (Lumina2Pipeline negates it before its scheduler step).
Its LoRA exports in diffusers' layout only (Lumina2Pipeline.load_lora_weights reads it); the tiny model is in tiny.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dreamcore.config.options.families import FlowMatchingOptions
from dreamcore.models.families.captions import (
    CaptionSettings,
    EncodedCaptions,
    length_caption_key,
    length_caption_settings,
    sequence_length,
)
from dreamcore.models.families.denoisers import Conditioning
from dreamcore.models.families.family import ModelFamily, masked_text
from dreamcore.models.families.lumina2.tiny import build_lumina2
from dreamcore.models.families.objectives import FlowMatchObjective


def is_lumina2(index: Mapping[str, Any], denoiser: Mapping[str, Any]) -> bool:
    """A Lumina2Pipeline folder (or one whose transformer is a Lumina2 transformer)."""
    return str(index.get("_class_name", "")).startswith("Lumina2") or \
        denoiser.get("_class_name") == "Lumina2Transformer2DModel"


def encode_lumina2_captions(pipe, captions: list[str], settings: CaptionSettings) -> EncodedCaptions:
    """Lumina2: Gemma2's penultimate states [B, L, D] of the system prompt and caption, and Gemma's mask [B, L]."""
    import torch

    with torch.no_grad():
        embeds, mask, _negative, _negative_mask = pipe.encode_prompt(
            prompt=captions, do_classifier_free_guidance=False, device=pipe._execution_device,
            num_images_per_prompt=1, max_sequence_length=sequence_length(pipe, settings),
        )
    return EncodedCaptions(embeds.float().cpu(), None, mask.cpu().to(torch.uint8))


def predict_lumina2(transformer, noisy, timesteps, conditioning: Conditioning):
    """Lumina2, called as Lumina2Pipeline calls it: unpacked latents, t = 1 - timesteps / 1000 and Gemma's mask; its
    output (latents - noise) negated into flow matching's target (noise - latents)."""
    if conditioning.attention_mask is None:
        raise ValueError("Lumina2 attends through the cached Gemma attention mask, but the batch has none; rebuild the "
                         "text cache")
    output = transformer(hidden_states=noisy, timestep=1 - timesteps / 1000,
                         encoder_hidden_states=conditioning.prompt_embeds,
                         encoder_attention_mask=conditioning.attention_mask.to(noisy.device), return_dict=False)[0]
    return -output


FAMILY = ModelFamily(
    name="lumina2",
    config_names=("lumina2",),
    detects=is_lumina2,
    pipeline_class="Lumina2Pipeline",
    text_components=("text_encoder", "tokenizer"),
    denoiser="transformer",
    preview_decoder="madebyollin/taef1",  # Flux's VAE
    # caption encoding and drawing
    ddpm_samplers=False,
    encode_captions=encode_lumina2_captions,
    caption_settings=length_caption_settings,
    caption_key=length_caption_key,
    sequence_tokenizer="tokenizer",
    lora_layouts={},  # diffusers_lora only: Lumina2Pipeline.load_lora_weights reads it
    objective=FlowMatchObjective(),
    # training: the denoiser call, adapters (the config's peft_lora_target_modules: the attention projections)
    predict=predict_lumina2,
    text_attention_masked=masked_text,
    options=(FlowMatchingOptions,),
    tiny_model=build_lumina2,
)
