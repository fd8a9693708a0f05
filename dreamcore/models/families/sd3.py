"""Stable Diffusion 3: an MMDiT transformer over a 16-channel VAE (with its shift and scale), conditioned
on CLIP-L + CLIP-G (penultimate states, pooled outputs concatenated) and T5, trained by flow matching."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from dreamcore.config.options.train import FLOW_MATCHING_FIELDS, SD3_FIELDS
from dreamcore.models.families.captions import encode_sd3_captions
from dreamcore.models.families.denoisers import predict_sd3
from dreamcore.models.families.family import ModelFamily
from dreamcore.models.families.objectives import FlowMatchObjective

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
    t5_tokenizer="tokenizer_3",
    lora_exports=("diffusers_lora",),
    objective=FlowMatchObjective(),
    # training: the denoiser call, adapters, family-only config keys
    predict=predict_sd3,
    lora_targets=sd3_lora_targets,
    config_fields=(*FLOW_MATCHING_FIELDS, *SD3_FIELDS),
)
