"""Qwen-Image: a dual-stream MMDiT (QwenImageTransformer2DModel) over 2x2-packed latents of a video-shaped VAE
(AutoencoderKLQwenImage: a frame axis, latents normalised by per-channel latents_mean / latents_std),
conditioned on Qwen2.5-VL's final hidden states of the caption in the pipeline's chat template (its system prefix
dropped) with their attention mask, trained by flow matching (the transformer given sigma = timestep / 1000).

Captions encode with QwenImagePipeline.encode_prompt at the length its __call__ draws with (512 tokens, or
tokenizer_max_length, which validation passes on too); each row keeps its caption's own length, as the pipeline
does, and batches pad them with zeros masked out (cache/batch.py stack_text), so the transformer always gets the
mask (encoder_hidden_states_mask). Rows live in their own text-cache folder: Qwen2.5-VL states never mix with
others. The edit models (QwenImageEditPipeline, SimpleTuner's edit-* flavours) are not this family. The tiny
model is in tiny.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from dreamcore.config.options.families import FlowMatchingOptions
from dreamcore.models.families.captions import CaptionSettings, EncodedCaptions
from dreamcore.models.families.denoisers import Conditioning
from dreamcore.models.families.family import ModelFamily
from dreamcore.models.families.objectives import FlowMatchObjective
from dreamcore.models.families.qwen_image.tiny import build_qwen_image

if TYPE_CHECKING:
    from dreamcore.config import TrainingConfig

# QwenImagePipeline.__call__'s max_sequence_length: the caption length it draws with when none is given.
DRAWING_TOKENS = 512


def is_qwen_image(index: Mapping[str, Any], denoiser: Mapping[str, Any]) -> bool:
    """A QwenImagePipeline folder (text to image; the edit pipelines share its transformer class but are not it)."""
    return index.get("_class_name") == "QwenImagePipeline"


def qwen_caption_settings(config: TrainingConfig, caption_dropout: bool) -> CaptionSettings:
    """Qwen2.5-VL's caption length: tokenizer_max_length when set, else what the pipeline draws with (512)."""
    return CaptionSettings(config.tokenizer_max_length)


def qwen_caption_key(settings: CaptionSettings) -> dict:
    """A set caption length enters the text encoder's fingerprint (unset: rows keyed as at 512)."""
    return {"qwen_image": {"tokenizer_max_length": settings.max_sequence_length}} if settings.max_sequence_length else {}


def encode_qwen_captions(pipe, captions: list[str], settings: CaptionSettings) -> EncodedCaptions:
    """QwenImagePipeline.encode_prompt: the final Qwen2.5-VL states of the templated caption with the template's
    prefix dropped [B, L, D] and their mask [B, L]. The pipeline pads a batch to its longest caption; each cached
    row is its own caption's tokens (own_lengths), so it never depends on the captions encoded beside it."""
    import torch

    with torch.no_grad():
        embeds, mask = pipe.encode_prompt(prompt=captions, device=pipe._execution_device, num_images_per_prompt=1,
                                          max_sequence_length=settings.max_sequence_length or DRAWING_TOKENS)
    embeds = embeds.float().cpu()
    mask = torch.ones(embeds.shape[:2], dtype=torch.uint8) if mask is None else mask.to(torch.uint8).cpu()
    return EncodedCaptions(embeds, None, mask, own_lengths=True)


def always_masked(config: TrainingConfig) -> bool:
    """The transformer always gets the text attention mask (QwenImagePipeline passes it on every call)."""
    return True


def normalised_latents(vae, pixels):
    """AutoencoderKLQwenImage: pixels gain a frame axis [B, 3, 1, H, W]; the mode's single frame, normalised per
    channel, (mode - latents_mean) / latents_std (the pipeline decodes with latents x std + mean), [B, 16, h, w]."""
    import torch

    latents = vae.encode(pixels.unsqueeze(2)).latent_dist.mode()[:, :, 0].float()
    mean = torch.tensor(vae.config.latents_mean, device=latents.device).view(1, -1, 1, 1)
    std = torch.tensor(vae.config.latents_std, device=latents.device).view(1, -1, 1, 1)
    return (latents - mean) / std


def predict_qwen_image(transformer, noisy, timesteps, conditioning: Conditioning):
    """QwenImageTransformer2DModel, called as QwenImagePipeline calls it: latents packed into 2x2 patches
    [B, hw/4, 4C] with their shape (img_shapes: one frame of h/2 x w/2), the text states and their mask,
    timestep / 1000; the output unpacked back to [B, C, h, w]."""
    from diffusers import QwenImagePipeline

    size, channels, height, width = noisy.shape
    if height % 2 or width % 2:
        raise ValueError(f"Qwen-Image packs latents into 2x2 patches: latent size {height}x{width} must be even "
                         "(image sides a multiple of 16 px)")
    packed = QwenImagePipeline._pack_latents(noisy, size, channels, height, width)
    output = transformer(hidden_states=packed, timestep=timesteps / 1000,
                         encoder_hidden_states=conditioning.prompt_embeds,
                         encoder_hidden_states_mask=conditioning.attention_mask,
                         img_shapes=[[(1, height // 2, width // 2)]] * size, return_dict=False)[0]
    # _unpack_latents at a VAE factor of 1 reads the latent size as given; it adds the frame axis, dropped here.
    return QwenImagePipeline._unpack_latents(output, height, width, 1)[:, :, 0]


FAMILY = ModelFamily(
    name="qwen_image",
    config_names=("qwen_image",),
    detects=is_qwen_image,
    pipeline_class="QwenImagePipeline",
    text_components=("text_encoder", "tokenizer"),
    denoiser="transformer",
    text_cache_folder="text_embeds_qwen_image",
    vae_class="AutoencoderKLQwenImage",
    encode_latents=normalised_latents,
    lora_layouts={},  # diffusers_lora only: QwenImagePipeline.load_lora_weights reads it
    objective=FlowMatchObjective(),
    # caption encoding and drawing
    ddpm_samplers=False,
    encode_captions=encode_qwen_captions,
    caption_settings=qwen_caption_settings,
    caption_key=qwen_caption_key,
    sequence_tokenizer="tokenizer",
    # training: the denoiser call, conditioning, family-only config keys
    predict=predict_qwen_image,
    text_attention_masked=always_masked,
    options=(FlowMatchingOptions,),
    tiny_model=build_qwen_image,
)
