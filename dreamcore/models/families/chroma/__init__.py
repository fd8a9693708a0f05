"""Chroma (lodestones/Chroma1-*): a Flux-derived transformer over packed 2x2 patches of Flux's 16-channel VAE
latents, conditioned on T5 states only (no CLIP, no pooled text, no guidance embedding), trained by flow matching.

What it shares with Flux is Flux's, by composition: the packing and the joint [text, image] key mask
(flux/denoiser.py), T5 caption settings and padding (captions.py), the option groups (flow matching, T5, Flux's
flux_lora_target presets). What is its own, as ChromaPipeline and SimpleTuner's chroma model do it:
- captions: ChromaPipeline.encode_prompt's T5 states (T5 run with the attention mask) and its mask, which keeps
  the first padding token: the text cache stores that mask and the transformer always attends through it
  (SimpleTuner's Chroma refuses to train without it), so flux_attention_masked_training changes nothing here;
- the default logit-normal sigmas are reshaped after the shift, s < 0.5: s^2, else 1 - (1 - s)^2 (SimpleTuner's
  Chroma schedule; the uniform and beta schedules are drawn as asked);
- Flux's guidance keys (flux_guidance_*) are refused when set: the model has no guidance embedding.
Its LoRA exports in diffusers' layout only (ChromaPipeline.load_lora_weights reads it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dreamcore.config.options.families import FlowMatchingOptions, FluxOptions, T5Options
from dreamcore.models.families.captions import (
    CaptionSettings,
    EncodedCaptions,
    sequence_length,
    t5_caption_key,
    t5_caption_settings,
    with_t5_padding,
)
from dreamcore.models.families.chroma.tiny import build_chroma
from dreamcore.models.families.denoisers import Conditioning
from dreamcore.models.families.family import ModelFamily, masked_text
from dreamcore.models.families.flux import flux_lora_targets
from dreamcore.models.families.flux.denoiser import joint_attention_mask, pack_flux_latents, unpack_flux_latents
from dreamcore.models.families.objectives import FlowMatchObjective

_NO_GUIDANCE = "Chroma has no guidance embedding ; unset it"


def is_chroma(index: Mapping[str, Any], denoiser: Mapping[str, Any]) -> bool:
    """A ChromaPipeline folder (or one whose transformer is a Chroma transformer)."""
    return str(index.get("_class_name", "")).startswith("Chroma") or \
        denoiser.get("_class_name") == "ChromaTransformer2DModel"


def encode_chroma_captions(pipe, captions: list[str], settings: CaptionSettings) -> EncodedCaptions:
    """Chroma: T5 states [B, L, D] and ChromaPipeline's attention mask [B, L] (real tokens and the first padding)."""
    import torch

    with torch.no_grad():
        embeds, _text_ids, mask, *_ = pipe.encode_prompt(
            prompt=captions, negative_prompt=None, device=pipe._execution_device, num_images_per_prompt=1,
            max_sequence_length=sequence_length(pipe, settings), do_classifier_free_guidance=False,
        )
    mask = mask.cpu().to(torch.uint8)
    return EncodedCaptions(with_t5_padding(embeds.float().cpu(), mask, settings), None, mask)


def predict_chroma(transformer, noisy, timesteps, conditioning: Conditioning):
    """Chroma, called as ChromaPipeline calls it: Flux's packed latents and ids, timestep / 1000, and the attention
    mask [text mask, image ones] over the joint sequence in the embeddings' dtype, as the pipeline hands it (its
    transformer multiplies it into a [S, S] mask: a float one the attention adds to its scores); the output is
    unpacked back to [B, C, h, w]."""
    if conditioning.attention_mask is None:
        raise ValueError("Chroma attends through the cached T5 attention mask, but the batch has none; rebuild the "
                         "text cache")
    packed = pack_flux_latents(noisy, conditioning.prompt_embeds.shape[1], family="Chroma")
    output = transformer(hidden_states=packed.tokens, timestep=timesteps / 1000,
                         encoder_hidden_states=conditioning.prompt_embeds, txt_ids=packed.text_ids,
                         img_ids=packed.image_ids,
                         attention_mask=joint_attention_mask(conditioning.attention_mask, packed,
                                                             conditioning.prompt_embeds.dtype),
                         return_dict=False)[0]
    return unpack_flux_latents(output, packed.height, packed.width)


def chroma_sigmas(sigmas):
    """SimpleTuner's Chroma reshaping of the drawn sigmas: s < 0.5: s^2, else 1 - (1 - s)^2 (away from the middle)."""
    import torch

    return torch.where(sigmas < 0.5, sigmas.square(), 1 - (1 - sigmas).square())


FAMILY = ModelFamily(
    name="chroma",
    config_names=("chroma",),
    detects=is_chroma,
    pipeline_class="ChromaPipeline",
    text_components=("text_encoder", "tokenizer"),
    denoiser="transformer",
    preview_decoder="madebyollin/taef1",  # Flux's VAE
    # caption encoding and drawing
    ddpm_samplers=False,
    encode_captions=encode_chroma_captions,
    caption_settings=t5_caption_settings,
    caption_key=t5_caption_key,
    sequence_tokenizer="tokenizer",
    lora_layouts={},  # diffusers_lora only: ChromaPipeline.load_lora_weights reads it
    objective=FlowMatchObjective(sigma_warp=chroma_sigmas),
    # training: the denoiser call, adapters, family-only config keys
    predict=predict_chroma,
    text_attention_masked=masked_text,
    lora_targets=flux_lora_targets,
    options=(FlowMatchingOptions, FluxOptions, T5Options),
    refused_keys={key: _NO_GUIDANCE for key in ("flux_guidance_mode", "flux_guidance_value", "flux_guidance_min",
                                                "flux_guidance_max")},
    tiny_model=build_chroma,
)
