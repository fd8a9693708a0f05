"""Flux.1 (dev/schnell shape): a transformer over packed 2x2 patches of a 16-channel VAE's latents, conditioned
on T5 states and CLIP-L's pooled output, with a guidance embedding (dev), trained by flow matching.

Everything Flux-only is in this package or its option groups (config/options/families/flux.py,
flow_matching.py, t5.py): the denoiser call (denoiser.py), caption encoding (captions.py), the ComfyUI
LoRA layout (comfyui.py), the tiny model (tiny.py), guidance and LoRA targets (here).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from dreamcore.config.options.families import FlowMatchingOptions, FluxOptions, T5Options
from dreamcore.config.options.families.flux import FLUX_LORA_TARGETS
from dreamcore.models.families.captions import t5_caption_key, t5_caption_settings
from dreamcore.models.families.family import ModelFamily
from dreamcore.models.families.flux.captions import encode_flux_captions
from dreamcore.models.families.flux.comfyui import COMFYUI_LORA
from dreamcore.models.families.flux.denoiser import predict_flux
from dreamcore.models.families.flux.tiny import build_flux
from dreamcore.models.families.objectives import FlowMatchObjective

if TYPE_CHECKING:
    from dreamcore.config import TrainingConfig


def is_flux(index: Mapping[str, Any], denoiser: Mapping[str, Any]) -> bool:
    """A FluxPipeline folder (or one whose transformer is a Flux transformer)."""
    return str(index.get("_class_name", "")).startswith("Flux") or denoiser.get("_class_name") == "FluxTransformer2DModel"


def flux_guidance(config: TrainingConfig, size: int, generator):
    """Guidance [size] for a guidance-distilled Flux: flux_guidance_value (constant), or uniform in
    [flux_guidance_min, flux_guidance_max] per sample (random-range; the middle of it without a generator)."""
    import torch

    if config.flux_guidance_mode == "constant":
        return torch.full((size,), float(config.flux_guidance_value))
    low, high = float(config.flux_guidance_min), float(config.flux_guidance_max)
    if generator is None:  # the eval loss: one fixed value
        return torch.full((size,), (low + high) / 2)
    return low + (high - low) * torch.rand(size, generator=generator)


def flux_lora_targets(config: TrainingConfig) -> list[str]:
    """peft_lora_target_modules when set, else SimpleTuner's flux_lora_target preset."""
    return list(config.peft_lora_target_modules or FLUX_LORA_TARGETS[config.flux_lora_target])


def flux_text_masked(config: TrainingConfig) -> bool:
    """flux_attention_masked_training: the transformer attends only to real T5 tokens (the cached mask)."""
    return config.flux_attention_masked_training


FAMILY = ModelFamily(
    name="flux",
    config_names=("flux",),
    detects=is_flux,
    pipeline_class="FluxPipeline",
    text_components=("text_encoder", "tokenizer", "text_encoder_2", "tokenizer_2"),
    denoiser="transformer",
    pooled_text=True,
    preview_decoder="madebyollin/taef1",
    # caption encoding and drawing
    ddpm_samplers=False,
    encode_captions=encode_flux_captions,
    caption_settings=t5_caption_settings,
    caption_key=t5_caption_key,
    sequence_tokenizer="tokenizer_2",
    lora_layouts={"comfyui_lora": COMFYUI_LORA},  # kohya sd-scripts' Flux keys, not the UNet's
    objective=FlowMatchObjective(),
    # training: the denoiser call, adapters, family-only config keys
    predict=predict_flux,
    guidance=flux_guidance,
    text_attention_masked=flux_text_masked,
    lora_targets=flux_lora_targets,
    options=(FlowMatchingOptions, FluxOptions, T5Options),
    tiny_model=build_flux,
)
