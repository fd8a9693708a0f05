"""How each family calls its denoiser: one `predict(model, noisy, timesteps, conditioning)` per family.

Inputs and outputs stay in unpacked latent space [B, C, h, w], so noise, targets and loss masks never
depend on how a model lays its tokens out. Timesteps are what the objective drew: DDPM integer
timesteps, or flow matching's sigma x 1000 (the scale the SD3 and Flux pipelines hand their transformers).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


@dataclass
class Conditioning:
    """What a denoiser is conditioned on, besides the noisy latents and timesteps."""

    prompt_embeds: torch.Tensor  # [B, T, D]
    pooled: torch.Tensor | None = None  # [B, P]: SDXL, SD3 (CLIP-L + CLIP-G), Flux (CLIP-L)
    time_ids: torch.Tensor | None = None  # [B, 6 | 5]: SDXL size ids, refiner aesthetic score
    guidance: torch.Tensor | None = None  # [B]: Flux's guidance embedding input (dev models)
    attention_mask: torch.Tensor | None = None  # [B, T] bool, True = real T5 token: Flux masked training only

    def select(self, index) -> Conditioning:
        """The samples at `index` (a 1-D index tensor)."""
        return Conditioning(*(None if t is None else t[index] for t in self._tensors()))

    def to(self, dtype) -> Conditioning:
        """Floating tensors cast to `dtype` (the denoiser's weight dtype); the attention mask stays boolean."""
        return Conditioning(*(t if t is None or not t.is_floating_point() else t.to(dtype) for t in self._tensors()))

    def with_guidance(self, guidance) -> Conditioning:
        """The same conditioning with Flux guidance [B] (or None)."""
        return replace(self, guidance=guidance)

    def _tensors(self):
        return self.prompt_embeds, self.pooled, self.time_ids, self.guidance, self.attention_mask


def predict_unet(unet, noisy, timesteps, conditioning: Conditioning):
    """SD 1.x/2.x, SDXL and refiner UNets; SDXL-style models also take pooled [B, P] and time_ids."""
    added = None
    if conditioning.pooled is not None:
        added = {"text_embeds": conditioning.pooled, "time_ids": conditioning.time_ids}
    return unet(noisy, timesteps, encoder_hidden_states=conditioning.prompt_embeds, added_cond_kwargs=added,
                return_dict=False)[0]


def predict_sd3(transformer, noisy, timesteps, conditioning: Conditioning):
    """SD3's MMDiT, called as StableDiffusion3Pipeline calls it (timesteps = sigma x 1000)."""
    return transformer(hidden_states=noisy, timestep=timesteps, encoder_hidden_states=conditioning.prompt_embeds,
                       pooled_projections=conditioning.pooled, return_dict=False)[0]


def predict_flux(transformer, noisy, timesteps, conditioning: Conditioning):
    """Flux, called as FluxPipeline calls it: latents packed into 2x2 patches [B, hw/4, 4C] with their
    position ids, text ids of zeros, timestep / 1000 and (guidance-distilled models) the guidance;
    the output is unpacked back to [B, C, h, w]. With an attention mask (flux_attention_masked_training) every
    token attends only to the real T5 tokens and the image tokens (SimpleTuner's mask: text mask, then ones)."""
    import torch
    from diffusers import FluxPipeline

    size, channels, height, width = noisy.shape
    if height % 2 or width % 2:
        raise ValueError(f"Flux packs latents into 2x2 patches: latent size {height}x{width} must be even "
                         "(image sides a multiple of 16 px)")
    packed = FluxPipeline._pack_latents(noisy, size, channels, height, width)
    image_ids = FluxPipeline._prepare_latent_image_ids(size, height // 2, width // 2, noisy.device, noisy.dtype)
    text_ids = torch.zeros(conditioning.prompt_embeds.shape[1], 3, device=noisy.device, dtype=noisy.dtype)
    guidance = None
    if transformer.config.guidance_embeds:
        if conditioning.guidance is None:
            raise ValueError("this Flux transformer has a guidance embedding (a dev model) but no guidance was given")
        guidance = conditioning.guidance.to(device=noisy.device, dtype=torch.float32)
    attention = None
    if conditioning.attention_mask is not None:
        # Keys of the joint sequence [text, image]: the processor expands a [B, S] mask to every head and query.
        image_keys = torch.ones(size, packed.shape[1], dtype=torch.bool, device=noisy.device)
        attention = {"attention_mask": torch.cat([conditioning.attention_mask.bool().to(noisy.device), image_keys],
                                                 dim=1)}
    output = transformer(hidden_states=packed, timestep=timesteps / 1000, guidance=guidance,
                         pooled_projections=conditioning.pooled, encoder_hidden_states=conditioning.prompt_embeds,
                         txt_ids=text_ids, img_ids=image_ids, joint_attention_kwargs=attention, return_dict=False)[0]
    return unpack_flux_latents(output, height, width)


def unpack_flux_latents(packed, height: int, width: int):
    """Flux tokens [B, h/2 x w/2, 4C] back to latents [B, C, h, w] (FluxPipeline._unpack_latents at scale 1)."""
    from diffusers import FluxPipeline

    return FluxPipeline._unpack_latents(packed, height, width, 1)
