"""How Flux calls its transformer: latents packed into 2x2 patches, position ids, timestep / 1000, guidance.

The packing (`pack_flux_latents`, `unpack_flux_latents`) and the joint [text, image] key mask
(`joint_attention_mask`) are shared with the Flux-derived Chroma (models/families/chroma/).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from dreamcore.models.families.denoisers import Conditioning

if TYPE_CHECKING:
    import torch


@dataclass
class PackedLatents:
    """Latents as a Flux-style transformer takes them: 2x2 patches and their position ids, text ids of zeros."""

    tokens: torch.Tensor  # [B, h/2 x w/2, 4C]
    image_ids: torch.Tensor  # [h/2 x w/2, 3]
    text_ids: torch.Tensor  # [T, 3]
    height: int  # latent height h (to unpack the output)
    width: int


def pack_flux_latents(noisy, text_length: int, family: str = "Flux") -> PackedLatents:
    """Noisy latents [B, C, h, w] packed as FluxPipeline packs them, with their image ids and `text_length` text ids."""
    import torch
    from diffusers import FluxPipeline

    size, channels, height, width = noisy.shape
    if height % 2 or width % 2:
        raise ValueError(f"{family} packs latents into 2x2 patches: latent size {height}x{width} must be even "
                         "(image sides a multiple of 16 px)")
    packed = FluxPipeline._pack_latents(noisy, size, channels, height, width)
    image_ids = FluxPipeline._prepare_latent_image_ids(size, height // 2, width // 2, noisy.device, noisy.dtype)
    text_ids = torch.zeros(text_length, 3, device=noisy.device, dtype=noisy.dtype)
    return PackedLatents(packed, image_ids, text_ids, height, width)


def joint_attention_mask(text_mask, packed: PackedLatents, dtype=None):
    """The joint sequence [text, image] [B, T + hw/4]: the text mask, then ones for every image token; boolean, or
    in `dtype` (ChromaPipeline hands its mask in the prompt embeddings' dtype)."""
    import torch

    dtype = dtype or torch.bool
    image_keys = torch.ones(packed.tokens.shape[0], packed.tokens.shape[1], dtype=dtype, device=packed.tokens.device)
    return torch.cat([text_mask.to(device=packed.tokens.device, dtype=dtype), image_keys], dim=1)


def predict_flux(transformer, noisy, timesteps, conditioning: Conditioning, extra_tokens=None):
    """Flux, called as FluxPipeline calls it: latents packed into 2x2 patches [B, hw/4, 4C] with their
    position ids, text ids of zeros, timestep / 1000 and (guidance-distilled models) the guidance;
    the output is unpacked back to [B, C, h, w]. With an attention mask (flux_attention_masked_training) every
    token attends only to the real T5 tokens and the image tokens (SimpleTuner's mask: text mask, then ones).
    `extra_tokens`: (tokens [B, S', 4C], ids [S', 3]) appended after the image tokens (an edit model's references,
    flux/kontext.py); the output keeps the target's tokens only."""
    import torch

    packed = pack_flux_latents(noisy, conditioning.prompt_embeds.shape[1])
    target_tokens = packed.tokens.shape[1]
    if extra_tokens is not None:
        tokens, ids = extra_tokens
        packed.tokens = torch.cat([packed.tokens, tokens.to(device=noisy.device, dtype=packed.tokens.dtype)], dim=1)
        packed.image_ids = torch.cat([packed.image_ids, ids.to(device=noisy.device, dtype=packed.image_ids.dtype)])
    guidance = None
    if transformer.config.guidance_embeds:
        if conditioning.guidance is None:
            raise ValueError("this Flux transformer has a guidance embedding (a dev model) but no guidance was given")
        guidance = conditioning.guidance.to(device=noisy.device, dtype=torch.float32)
    attention = None
    if conditioning.attention_mask is not None:
        # The processor expands a [B, S] key mask to every head and query.
        attention = {"attention_mask": joint_attention_mask(conditioning.attention_mask, packed)}
    output = transformer(hidden_states=packed.tokens, timestep=timesteps / 1000, guidance=guidance,
                         pooled_projections=conditioning.pooled, encoder_hidden_states=conditioning.prompt_embeds,
                         txt_ids=packed.text_ids, img_ids=packed.image_ids, joint_attention_kwargs=attention,
                         return_dict=False)[0]
    return unpack_flux_latents(output[:, :target_tokens], packed.height, packed.width)


def unpack_flux_latents(packed, height: int, width: int):
    """Flux tokens [B, h/2 x w/2, 4C] back to latents [B, C, h, w] (FluxPipeline._unpack_latents at scale 1)."""
    from diffusers import FluxPipeline

    return FluxPipeline._unpack_latents(packed, height, width, 1)
