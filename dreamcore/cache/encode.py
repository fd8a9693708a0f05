"""Turning prepared images into what the denoiser trains on: device choice, VAE loading, pixels, batched encode.

Latent families encode with their VAE; a pixel-space family (its `latent_vae` None: DeepFloyd IF) trains on
the pixels themselves, so its "encoder" is the identity on pixels in [-1, 1] and the cache stage stays one.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

import numpy as np

from dreamcore.models import ModelFamily, detect_family, model_fingerprint
from dreamcore.models.families.latents import scaled_latents

if TYPE_CHECKING:
    import torch
    from PIL import Image


def pick_device(device: str | None = None) -> str:
    """The device to encode on: the one asked for, else CUDA when present, else CPU."""
    if device:
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_vae(model_path: str, device: str | None = None, family: ModelFamily | None = None):
    """The model's VAE (subfolder "vae"; the family's `vae_class`, default AutoencoderKL), in eval mode on
    `device`, float32.

    float32 on purpose: SDXL's VAE overflows to NaN in float16; the cache stores fp16/bf16 anyway.
    """
    import diffusers

    vae_class = getattr(diffusers, family.vae_class if family is not None else "AutoencoderKL")
    vae = vae_class.from_pretrained(str(model_path), subfolder="vae")
    return vae.to(pick_device(device)).eval().requires_grad_(False)


# What a pixel-space family's rows are keyed by in place of a VAE fingerprint (bump if the scaling changes).
PIXEL_SPACE = "pixels in [-1, 1], float32"


def load_image_encoder(model_path: str, device: str | None = None, family: ModelFamily | None = None):
    """pixels -> the latents the cache stores, with the model's VAE and its family's `encode_latents`; or None
    for a pixel-space family (its images are cached as pixels); `family`: the model's, when the caller's plan
    holds it (else detected here)."""
    family = family or detect_family(model_path)
    if family.latent_vae is None:
        return None
    return partial(encode_pixels, load_vae(model_path, device, family), latents_of=family.encode_latents)


def image_encoder_fingerprint(model_path: str, family: ModelFamily | None = None) -> str:
    """What cached rows of this model depend on besides the image: its VAE's fingerprint, or PIXEL_SPACE
    (`family`: the model's, when already known)."""
    vae = (family or detect_family(model_path)).latent_vae
    return PIXEL_SPACE if vae is None else model_fingerprint(model_path, vae)


def encode_images(encoder, pixels: torch.Tensor) -> torch.Tensor:
    """What one batch of pixels [B, 3, H, W] in [-1, 1] caches as: VAE latents (encode_pixels), or with no
    encoder (pixel space) the pixels themselves, float32 on the CPU."""
    return pixels.float().cpu() if encoder is None else encoder(pixels)


def pixels_from_images(images: list[Image.Image]) -> torch.Tensor:
    """[B, 3, H, W] float32 in [-1, 1] from same-sized RGB images."""
    import torch

    array = np.stack([np.asarray(image.convert("RGB"), dtype=np.uint8) for image in images])
    pixels = torch.from_numpy(array).permute(0, 3, 1, 2).float()
    return pixels.div_(127.5).sub_(1.0)


def encode_pixels(vae, pixels: torch.Tensor, latents_of=scaled_latents) -> torch.Tensor:
    """Latents [B, C, H/f, W/f] (float32, on CPU) of pixels in [-1, 1], by `latents_of` (the family's
    `encode_latents`; default AutoencoderKL's (mode - shift) x scaling), applied here and nowhere else."""
    import torch

    device = next(vae.parameters()).device
    with torch.inference_mode():
        latents = latents_of(vae, pixels.to(device=device, dtype=vae.dtype))
    return latents.float().cpu()


def latent_factor(vae) -> int:
    """How many pixels one latent cell covers per edge (8 for SD/SDXL, 2 for the tiny VAE)."""
    return 2 ** (len(vae.config.block_out_channels) - 1)
