"""How each family calls its denoiser: one `predict(model, noisy, timesteps, conditioning)` per family.

Inputs and outputs stay in unpacked latent space [B, C, h, w], so noise, targets and loss masks never
depend on how a model lays its tokens out. Timesteps are what the objective drew: DDPM integer
timesteps, or flow matching's sigma x 1000 (the scale the SD3 and Flux pipelines hand their transformers).
The UNet call is here; each transformer family's call lives in its own module.
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
    # An upscaler's (DeepFloyd IF stage II) degraded low-resolution input, upscaled to the target [B, C, H, W],
    # and its noise-augmentation level [B] (the UNet's class_labels); built by the family's image_conditioning.
    image: torch.Tensor | None = None
    class_labels: torch.Tensor | None = None
    # An edit model's reference latents, one [B, C, h', w'] per reference image (cached like any image); the family's
    # predict appends them to its input as its edit pipeline does (Flux Kontext), and predicts the target only.
    reference: tuple[torch.Tensor, ...] | None = None

    def select(self, index) -> Conditioning:
        """The samples at `index` (a 1-D index tensor)."""
        reference = None if self.reference is None else tuple(t[index] for t in self.reference)
        return Conditioning(*(None if t is None else t[index] for t in self._tensors()), reference=reference)

    def to(self, dtype) -> Conditioning:
        """Floating tensors cast to `dtype` (the denoiser's weight dtype); the attention mask stays boolean."""
        def cast(t):
            return t if t is None or not t.is_floating_point() else t.to(dtype)

        reference = None if self.reference is None else tuple(cast(t) for t in self.reference)
        return Conditioning(*(cast(t) for t in self._tensors()), reference=reference)

    def with_guidance(self, guidance) -> Conditioning:
        """The same conditioning with Flux guidance [B] (or None)."""
        return replace(self, guidance=guidance)

    def _tensors(self):
        return (self.prompt_embeds, self.pooled, self.time_ids, self.guidance, self.attention_mask, self.image,
                self.class_labels)


def predict_unet(unet, noisy, timesteps, conditioning: Conditioning):
    """SD 1.x/2.x, SDXL and refiner UNets; SDXL-style models also take pooled [B, P] and time_ids."""
    added = None
    if conditioning.pooled is not None:
        added = {"text_embeds": conditioning.pooled, "time_ids": conditioning.time_ids}
    return unet(noisy, timesteps, encoder_hidden_states=conditioning.prompt_embeds, added_cond_kwargs=added,
                return_dict=False)[0]
