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

    def select(self, index) -> Conditioning:
        """The samples at `index` (a 1-D index tensor)."""
        return Conditioning(*(None if t is None else t[index] for t in self._tensors()))

    def to(self, dtype) -> Conditioning:
        """Floating tensors cast to `dtype` (the denoiser's weight dtype)."""
        return Conditioning(*(None if t is None else t.to(dtype) for t in self._tensors()))

    def with_guidance(self, guidance) -> Conditioning:
        """The same conditioning with Flux guidance [B] (or None)."""
        return replace(self, guidance=guidance)

    def _tensors(self):
        return self.prompt_embeds, self.pooled, self.time_ids, self.guidance


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
    the output is unpacked back to [B, C, h, w]."""
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
    output = transformer(hidden_states=packed, timestep=timesteps / 1000, guidance=guidance,
                         pooled_projections=conditioning.pooled, encoder_hidden_states=conditioning.prompt_embeds,
                         txt_ids=text_ids, img_ids=image_ids, return_dict=False)[0]
    return unpack_flux_latents(output, height, width)


def unpack_flux_latents(packed, height: int, width: int):
    """Flux tokens [B, h/2 x w/2, 4C] back to latents [B, C, h, w] (FluxPipeline._unpack_latents at scale 1)."""
    from diffusers import FluxPipeline

    return FluxPipeline._unpack_latents(packed, height, width, 1)
