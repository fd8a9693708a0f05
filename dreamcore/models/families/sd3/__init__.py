"""Stable Diffusion 3: an MMDiT transformer over a 16-channel VAE (with its shift and scale), conditioned
on CLIP-L + CLIP-G (penultimate states, pooled outputs concatenated) and T5, trained by flow matching.

Everything SD3-only is in this package or its option groups (config/options/families/sd3.py,
flow_matching.py, t5.py): the denoiser call, caption encoding and what a dropped caption becomes (here),
the tiny model (tiny.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from dreamcore.config.options.families import FlowMatchingOptions, SD3Options, T5Options
from dreamcore.models.families.captions import (
    CaptionSettings,
    EncodedCaptions,
    sequence_length,
    t5_attention_mask,
    t5_caption_key,
    t5_caption_settings,
)
from dreamcore.models.families.denoisers import Conditioning
from dreamcore.models.families.family import ModelFamily
from dreamcore.models.families.objectives import FlowMatchObjective
from dreamcore.models.families.sd3.tiny import build_sd3

if TYPE_CHECKING:
    from dreamcore.config import TrainingConfig

# The MMDiT's joint attention projections (image and text streams): what diffusers' SD3 DreamBooth LoRA trains.
SD3_LORA_TARGET_MODULES = ("to_k", "to_q", "to_v", "to_out.0", "add_k_proj", "add_q_proj", "add_v_proj", "to_add_out")


def is_sd3(index: Mapping[str, Any], denoiser: Mapping[str, Any]) -> bool:
    """A StableDiffusion3Pipeline folder (or one whose transformer is an SD3 MMDiT)."""
    return str(index.get("_class_name", "")).startswith("StableDiffusion3") \
        or denoiser.get("_class_name") == "SD3Transformer2DModel"


def sd3_lora_targets(config: TrainingConfig) -> list[str]:
    """peft_lora_target_modules when set, else the joint attention projections."""
    return list(config.peft_lora_target_modules or SD3_LORA_TARGET_MODULES)


def predict_sd3(transformer, noisy, timesteps, conditioning: Conditioning):
    """SD3's MMDiT, called as StableDiffusion3Pipeline calls it (timesteps = sigma x 1000)."""
    return transformer(hidden_states=noisy, timestep=timesteps, encoder_hidden_states=conditioning.prompt_embeds,
                       pooled_projections=conditioning.pooled, return_dict=False)[0]


def sd3_caption_settings(config: TrainingConfig, caption_dropout: bool) -> CaptionSettings:
    """T5 length and padding; with caption dropout, whether the empty caption's CLIP and T5 parts are zeros
    (sd3_clip_uncond_behaviour, sd3_t5_uncond_behaviour)."""
    settings = t5_caption_settings(config, caption_dropout)
    if not caption_dropout:
        return settings
    clip = config.sd3_clip_uncond_behaviour
    t5 = config.sd3_t5_uncond_behaviour or clip
    return replace(settings, empty_clip_zero=clip == "zero", empty_t5_zero=t5 == "zero")


def encode_sd3_captions(pipe, captions: list[str], settings: CaptionSettings) -> EncodedCaptions:
    """SD3: CLIP-L + CLIP-G penultimate states (zero-padded to the T5 width) followed by the T5 states
    [B, 77 + L, D]; pooled = both CLIP pooled outputs concatenated. The transformer takes no mask.
    The empty caption's CLIP and/or T5 parts are zeros when the settings ask (SimpleTuner's uncond behaviour)."""
    import torch

    length = sequence_length(pipe, settings)
    with torch.no_grad():
        embeds, _, pooled, _ = pipe.encode_prompt(
            prompt=captions, prompt_2=None, prompt_3=None, device=pipe._execution_device, num_images_per_prompt=1,
            do_classifier_free_guidance=False, max_sequence_length=length,
        )
    embeds, pooled = embeds.float().cpu(), pooled.float().cpu()
    if settings.t5_padding == "zero":
        mask = t5_attention_mask(pipe.tokenizer_3, captions, length)
        embeds[:, -length:] *= mask.unsqueeze(-1).to(embeds.dtype)  # the T5 part is the last `length` tokens
    for row in (i for i, caption in enumerate(captions) if caption == ""):
        if settings.empty_clip_zero:  # both CLIPs' states and pooled outputs
            embeds[row, :-length] = 0
            pooled[row] = 0
        if settings.empty_t5_zero:
            embeds[row, -length:] = 0
    return EncodedCaptions(embeds, pooled)


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
    # caption encoding and drawing
    ddpm_samplers=False,
    encode_captions=encode_sd3_captions,
    caption_settings=sd3_caption_settings,
    caption_key=t5_caption_key,
    sequence_tokenizer="tokenizer_3",
    lora_layouts={},  # diffusers_lora only
    objective=FlowMatchObjective(),
    # training: the denoiser call, adapters, family-only config keys
    predict=predict_sd3,
    lora_targets=sd3_lora_targets,
    options=(FlowMatchingOptions, SD3Options, T5Options),
    tiny_model=build_sd3,
)
