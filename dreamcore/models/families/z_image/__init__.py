"""Z-Image: a single-stream transformer over 2x2 patches of the Flux-style 16-channel VAE's latents, conditioned
on Qwen3's penultimate hidden states (the chat-templated caption, real tokens only), trained by flow matching.

Its pipeline differs from the other transformer families in three ways this module absorbs: the transformer
takes lists of per-sample latents [C, 1, h, w] and per-sample caption states [T_i, D] (padding dropped); it is
given t = 1 - sigma (ZImagePipeline's (1000 - timestep) / 1000); and it predicts latents - noise, so the
prediction is negated into the flow-matching velocity noise - latents the objective's target is. Captions are
cached at `tokenizer_max_length` (default 512, ZImagePipeline's length) with Qwen's attention mask, which
training always applies (it drops the padding, as the pipeline does); the states of the real tokens do not
depend on the length (right padding, causal attention), so cached rows match drawing at any length.
Everything Z-Image-only is here, in tiny.py and in config/options/families/z_image.py (the turbo flavours'
assistant LoRA, the de-turbo transformer).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from dreamcore.config.options.families import FlowMatchingOptions, ZImageOptions
from dreamcore.models.families.captions import CaptionSettings, EncodedCaptions, sequence_length
from dreamcore.models.families.denoisers import Conditioning
from dreamcore.models.families.family import ModelFamily
from dreamcore.models.families.objectives import FlowMatchObjective
from dreamcore.models.families.z_image.tiny import build_z_image

if TYPE_CHECKING:
    from dreamcore.config import TrainingConfig


def is_z_image(index: Mapping[str, Any], denoiser: Mapping[str, Any]) -> bool:
    """A ZImagePipeline folder (or one whose transformer is a Z-Image transformer)."""
    return str(index.get("_class_name", "")).startswith("ZImage") \
        or denoiser.get("_class_name") == "ZImageTransformer2DModel"


def predict_z_image(transformer, noisy, timesteps, conditioning: Conditioning):
    """Z-Image, called as ZImagePipeline calls it: per-sample latents [C, 1, h, w], per-sample caption states of
    the real tokens, t = (1000 - timestep) / 1000; its output (latents - noise) negated into the velocity."""
    import torch

    if conditioning.attention_mask is None:
        raise ValueError("Z-Image needs the cached caption attention mask (its transformer reads real tokens only)")
    height, width = noisy.shape[-2:]
    if height % 2 or width % 2:
        raise ValueError(f"Z-Image patches latents 2x2: latent size {height}x{width} must be even "
                         "(image sides a multiple of 16 px)")
    mask = conditioning.attention_mask.bool().to(noisy.device)
    captions = [states[real] for states, real in zip(conditioning.prompt_embeds, mask)]
    output = transformer(list(noisy.unsqueeze(2).unbind(0)), (1000 - timesteps) / 1000, captions,
                         return_dict=False)[0]
    return -torch.stack(output).squeeze(2)


def z_image_caption_settings(config: TrainingConfig, caption_dropout: bool) -> CaptionSettings:
    """The Qwen3 sequence length (tokenizer_max_length; default ZImagePipeline's 512)."""
    return CaptionSettings(config.tokenizer_max_length)


def z_image_caption_key(settings: CaptionSettings) -> dict:
    """The Qwen3 length, in the text encoder's fingerprint (a shorter length truncates long captions)."""
    return {"qwen3": {"tokenizer_max_length": settings.max_sequence_length}}


def encode_z_image_captions(pipe, captions: list[str], settings: CaptionSettings) -> EncodedCaptions:
    """ZImagePipeline.encode_prompt's states of each caption's real tokens, zero-padded to [B, L, D], with the
    mask [B, L] of the real ones (the pipeline's own tokenizer call: chat template, padding, truncation)."""
    import torch

    length = sequence_length(pipe, settings)
    with torch.no_grad():  # encode_prompt rewrites its prompt list in place: it gets a copy
        states, _ = pipe.encode_prompt(prompt=list(captions), device=pipe._execution_device,
                                       do_classifier_free_guidance=False, max_sequence_length=length)
    embeds = torch.zeros(len(states), length, states[0].shape[-1])
    mask = torch.zeros(len(states), length, dtype=torch.uint8)
    for row, real in enumerate(states):
        embeds[row, :len(real)] = real.float().cpu()
        mask[row, :len(real)] = 1
    return EncodedCaptions(embeds, None, mask)


def always_masked(config: TrainingConfig) -> bool:
    """Z-Image's transformer reads only the real caption tokens, in training as in drawing."""
    return True


FAMILY = ModelFamily(
    name="z_image",
    config_names=("z_image",),
    detects=is_z_image,
    pipeline_class="ZImagePipeline",
    text_components=("text_encoder", "tokenizer"),
    denoiser="transformer",
    text_cache_folder="text_embeds_z_image",  # Qwen3 rows (with their mask) never mix with other encoders' rows
    preview_decoder="madebyollin/taef1",  # Flux's VAE
    # caption encoding and drawing
    ddpm_samplers=False,
    encode_captions=encode_z_image_captions,
    caption_settings=z_image_caption_settings,
    caption_key=z_image_caption_key,
    sequence_tokenizer="tokenizer",
    lora_layouts={},  # diffusers_lora only: ZImagePipeline.load_lora_weights reads it
    objective=FlowMatchObjective(),
    # training: the denoiser call, family-only config keys (LoRA targets: the attention projections, as
    # diffusers' Z-Image DreamBooth LoRA script trains)
    predict=predict_z_image,
    text_attention_masked=always_masked,
    options=(FlowMatchingOptions, ZImageOptions),
    tiny_model=build_z_image,
)
