"""Sampling previews: a Tiny AutoEncoder decodes the intermediate latents every N steps, sent over webhooks.

TAESD decodes the *scaled* latents the pipeline works on (diffusers gives AutoencoderTiny a
scaling factor of 1.0), in milliseconds, so a preview costs almost nothing beside the UNet.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from dreamcore.drawing.images import png_bytes
from dreamcore.evaluate.webhooks import WebhookHub
from dreamcore.models import hub_offline

if TYPE_CHECKING:
    from PIL import Image

    from dreamcore.models import ModelFamily

logger = logging.getLogger(__name__)


class PreviewDecoder:
    """AutoencoderTiny on a device: latents [B, C, h, w] (scaled; 4 channels SD/SDXL, 16 SD3/Flux) -> RGB."""

    def __init__(self, vae) -> None:
        self.vae = vae  # None: a pixel-space model's intermediate images are shown as they are

    @classmethod
    def load(cls, path: str | None, family: ModelFamily, device) -> PreviewDecoder | None:
        """The configured TAESD (or the family's default, only when already cached); None, with a warning,
        when unavailable. A pixel-space family (no VAE) needs no decoder."""
        from diffusers import AutoencoderTiny

        if family.latent_vae is None:
            return cls(None)
        source = path or family.preview_decoder
        if source is None:  # no Tiny AutoEncoder is published for this family's latents (Qwen-Image's)
            logger.warning("validation previews are off: no Tiny AutoEncoder is known for %s latents; set "
                           "validation_preview_vae to a local TAESD folder for them", family.name)
            return None
        try:
            vae = AutoencoderTiny.from_pretrained(source, local_files_only=path is None or _offline())
        except (OSError, ValueError) as error:
            logger.warning("validation previews are off: Tiny AutoEncoder %r could not be loaded (%s); set "
                           "validation_preview_vae to a local TAESD folder", source, type(error).__name__)
            return None
        return cls(vae.to(device).eval().requires_grad_(False))

    def decode(self, latents) -> list[Image.Image]:
        """RGB images of scaled latents [B, C, h, w]."""
        import torch
        from PIL import Image

        pixels = latents
        if self.vae is not None:
            with torch.inference_mode():
                pixels = self.vae.decode(latents.to(self.vae.device, self.vae.dtype)).sample
        array = ((pixels.float() / 2 + 0.5).clamp(0, 1) * 255).round().to(torch.uint8)
        return [Image.fromarray(a.permute(1, 2, 0).cpu().numpy()) for a in array]


def _offline() -> bool:
    return hub_offline()


def step_callback_options(callback: Callable[..., dict[str, Any]], pipe, size: tuple[int, int]) -> dict[str, Any]:
    """The pipeline call's options that run a `callback_on_step_end`-style `callback` after every step: as
    callback_on_step_end (unpacked_latents), or through the older `callback(step, timestep, latents)` of a
    pipeline without it (DeepFloyd IF's, whose "latents" are its intermediate images)."""
    if "callback_on_step_end" in inspect.signature(pipe.__call__).parameters:
        return {"callback_on_step_end": unpacked_latents(callback, pipe, size)}

    def on_step(step_index: int, timestep, latents) -> None:
        callback(pipe, step_index, timestep, {"latents": latents})

    return {"callback": on_step, "callback_steps": 1}


def unpacked_latents(callback: Callable[..., dict[str, Any]], pipe, size: tuple[int, int]):
    """`callback` seeing latents [B, C, h, w] even from a pipeline that packs them into tokens (Flux), for
    an image of `size` (width, height); the pipeline keeps its own packed latents."""
    unpack = getattr(pipe, "_unpack_latents", None)
    if unpack is None:
        return callback
    width, height = size

    def on_step_end(pipe, step_index: int, timestep, callback_kwargs: dict[str, Any]) -> dict[str, Any]:
        latents = unpack(callback_kwargs["latents"], height, width, pipe.vae_scale_factor)
        if latents.dim() == 5:  # a video-shaped VAE's latents (Qwen-Image): [B, C, 1 frame, h, w]
            latents = latents[:, :, 0]
        callback(pipe, step_index, timestep, dict(callback_kwargs, latents=latents))
        return callback_kwargs

    return on_step_end


def preview_callback(decoder: PreviewDecoder, hub: WebhookHub, every: int, label: str,
                     sent: list[int] | None = None) -> Callable[..., dict[str, Any]]:
    """A diffusers `callback_on_step_end` sending a preview after every `every`-th sampling step.

    `sent` (optional) collects the 1-based sampling steps whose preview was delivered. Once every
    webhook has failed, the callback only returns (no more decoding).
    """

    def on_step_end(pipe, step_index: int, timestep, callback_kwargs: dict[str, Any]) -> dict[str, Any]:
        step = step_index + 1
        if step % every or not hub.active:
            return callback_kwargs
        try:
            image = decoder.decode(callback_kwargs["latents"][:1])[0]
        except Exception as error:  # noqa: BLE001 - a preview must never stop sampling
            logger.warning("validation preview decode failed (%s); previews are off", type(error).__name__)
            for webhook in hub.webhooks:
                webhook.enabled = False
            return callback_kwargs
        message = f"{label}: sampling step {step}/{getattr(pipe, 'num_timesteps', '?')}"
        if hub.send(message, png_bytes(image), event="validation_preview", sampling_step=step,
                    timestep=int(timestep), label=label) and sent is not None:
            sent.append(step)
        return callback_kwargs

    return on_step_end
