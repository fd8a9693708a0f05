"""How a family's VAE turns pixels into the latents its denoiser trains on (the VAE cache's rows).

One `encode_latents(vae, pixels)` per family: pixels [B, 3, H, W] in [-1, 1] on the VAE's device and dtype ->
latents [B, C, h, w] float32. The distribution's mode, not a sample: the same image always gives the same latents,
which is what lets one cached row serve every run. The AutoencoderKL families' encoder is here; a family with
another VAE (Qwen-Image's video-shaped one) has its own in its module. torch is imported by the callers.
"""

from __future__ import annotations


def scaled_latents(vae, pixels):
    """AutoencoderKL: (mode - shift) x scaling (SD3/Flux VAEs have a shift_factor; SD/SDXL none). Decode with
    latents / scaling + shift."""
    latents = vae.encode(pixels).latent_dist.mode()
    shift = getattr(vae.config, "shift_factor", None) or 0.0
    return (latents.float() - shift) * vae.config.scaling_factor
