"""Flux.1 (dev/schnell shape): a transformer over packed 2x2 patches of a 16-channel VAE's latents, conditioned
on T5 states and CLIP-L's pooled output, with a guidance embedding (dev), trained by flow matching."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from dreamcore.config.options.model import FLUX_LORA_TARGETS
from dreamcore.config.options.train import FLOW_MATCHING_FIELDS, FLUX_FIELDS
from dreamcore.models.families.captions import encode_flux_captions
from dreamcore.models.families.denoisers import predict_flux
from dreamcore.models.families.family import ModelFamily
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
    t5_tokenizer="tokenizer_2",
    lora_exports=("diffusers_lora", "comfyui_lora"),  # comfyui: kohya sd-scripts Flux keys
    objective=FlowMatchObjective(),
    # training: the denoiser call, adapters, family-only config keys
    predict=predict_flux,
    guidance=flux_guidance,
    lora_targets=flux_lora_targets,
    config_fields=(*FLOW_MATCHING_FIELDS, *FLUX_FIELDS),
)
