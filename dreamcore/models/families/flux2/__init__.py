"""Flux.2 (SimpleTuner's model_family flux2): a transformer over 2x2 patches of a 32-channel VAE's latents
normalised by the VAE's batch-norm statistics, conditioned on one text encoder's states from three hidden layers
side by side, trained by flow matching. Flavours: dev (Flux2Pipeline, Mistral-3 encoder read at layers 10, 20, 30,
a guidance embedding) and klein-4b / klein-9b (Flux2KleinPipeline, Qwen3 read at layers 9, 18, 27, no guidance
embedding: real CFG when drawing).

As in SimpleTuner: the transformer is trained at guidance 1.0 (dev; klein takes none), its default LoRA targets
are the attention projections of both block kinds, captions encode at tokenizer_max_length tokens (the pipeline's
512 by default) into their own text-cache folder. The denoiser call and the latents are in denoiser.py, the tiny
model in tiny.py. Reference-image (edit) conditioning is not trained here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from dreamcore.config.options.families import FlowMatchingOptions
from dreamcore.models.families.captions import CaptionSettings, EncodedCaptions, sequence_length
from dreamcore.models.families.family import ModelFamily
from dreamcore.models.families.flux2.denoiser import flux2_latents, predict_flux2
from dreamcore.models.families.flux2.tiny import build_flux2
from dreamcore.models.families.objectives import FlowMatchObjective

if TYPE_CHECKING:
    from dreamcore.config import TrainingConfig

PIPELINES = ("Flux2KleinPipeline", "Flux2Pipeline")
# SimpleTuner's Flux.2 DEFAULT_LORA_TARGET: double blocks' image attention, single blocks' fused qkv+mlp input.
FLUX2_LORA_TARGET_MODULES = ("attn.to_q", "attn.to_k", "attn.to_v", "attn.to_out.0", "attn.to_qkv_mlp_proj")


def is_flux2(index: Mapping[str, Any], denoiser: Mapping[str, Any]) -> bool:
    """A Flux2Pipeline / Flux2KleinPipeline folder (or one whose transformer is a Flux.2 transformer)."""
    return index.get("_class_name") in PIPELINES or denoiser.get("_class_name") == "Flux2Transformer2DModel"


def flux2_guidance(config: TrainingConfig, size: int, generator):
    """Guidance [size] of 1.0: SimpleTuner trains Flux.2 at a constant 1.0 whatever Flux.1's guidance keys say (read only
    by a transformer with a guidance embedding, dev)."""
    import torch

    return torch.ones(size)


def flux2_lora_targets(config: TrainingConfig) -> list[str]:
    """peft_lora_target_modules when set, else SimpleTuner's Flux.2 default targets."""
    return list(config.peft_lora_target_modules or FLUX2_LORA_TARGET_MODULES)


def flux2_caption_settings(config: TrainingConfig, caption_dropout: bool) -> CaptionSettings:
    """The text encoder's sequence length: tokenizer_max_length, else the pipeline's (512)."""
    return CaptionSettings(config.tokenizer_max_length)


def flux2_caption_key(settings: CaptionSettings) -> dict:
    """The sequence length, in the text encoder's fingerprint."""
    return {"tokenizer_max_length": settings.max_sequence_length}


def encode_flux2_captions(pipe, captions: list[str], settings: CaptionSettings) -> EncodedCaptions:
    """The pipeline's own encode_prompt: the chat-templated caption padded to the sequence length, the states of
    its three hidden layers side by side [B, L, 3D]; the transformer takes no mask and no pooled embedding."""
    import torch

    with torch.no_grad():
        embeds, _text_ids = pipe.encode_prompt(prompt=captions, device=pipe._execution_device, num_images_per_prompt=1,
                                               max_sequence_length=sequence_length(pipe, settings))
    return EncodedCaptions(embeds.float().cpu())


FAMILY = ModelFamily(
    name="flux2",
    config_names=("flux2",),
    detects=is_flux2,
    pipeline_class=PIPELINES[0],
    pipeline_classes=PIPELINES,
    text_components=("text_encoder", "tokenizer"),
    denoiser="transformer",
    text_cache_folder="text_embeds_flux2",
    preview_decoder=None,  # no Tiny AutoEncoder decodes Flux.2's packed latents here
    vae_class="AutoencoderKLFlux2",
    encode_latents=flux2_latents,
    # caption encoding and drawing
    ddpm_samplers=False,
    encode_captions=encode_flux2_captions,
    caption_settings=flux2_caption_settings,
    caption_key=flux2_caption_key,
    sequence_tokenizer="tokenizer",
    lora_layouts={},  # diffusers_lora only: Flux2Pipeline / Flux2KleinPipeline.load_lora_weights read it
    objective=FlowMatchObjective(),
    # training: the denoiser call, adapters, family-only config keys
    predict=predict_flux2,
    guidance=flux2_guidance,
    lora_targets=flux2_lora_targets,
    options=(FlowMatchingOptions,),
    tiny_model=build_flux2,
)
