"""Drawing with stock diffusers pipelines: which one, in which dtype, and img2img inputs.

Shared by evaluation, the refine stage and anything else that draws with the base model.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from fsspec.core import url_to_fs

from dreamcore.models import all_families, detect_family, load_pipeline

if TYPE_CHECKING:
    from PIL import Image


def pipeline_dtype(mixed_precision: str, device) -> Any:
    """The dtype to draw in: the training precision on CUDA, float32 elsewhere."""
    import torch

    if torch.device(device).type != "cuda":
        return torch.float32
    if mixed_precision == "bf16" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float16 if mixed_precision in ("fp16", "bf16") else torch.float32


def load_validation_pipeline(model_path: str, device, dtype=None, with_unet: bool = True, family=None):
    """The stock diffusers pipeline of the base model on `device` (no progress bars); `with_unet=False`
    leaves its denoiser (UNet or transformer) out; `family`: the model's, when a stage plan knows it."""
    family = family or detect_family(model_path)
    components = None if with_unet else {family.denoiser: None}
    pipe = load_pipeline(model_path, family, torch_dtype=dtype, components=components)
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)


# Scheduler variance types that read the denoiser's predicted variance (DeepFloyd IF's 6-channel output).
_LEARNED_VARIANCE = ("learned", "learned_range")


@contextlib.contextmanager
def fixed_variance(pipe) -> Iterator[object]:
    """Context: `pipe` draws trained weights. Training fits the noise half of a learned-variance output only (the
    variance half is whatever the trained layers now make of it), so a scheduler that reads it draws with
    variance_type fixed_small instead, as diffusers' train_dreambooth_lora.py validates (log_validation) and
    requires of every scheduler using the trained model; other schedulers are left as they are."""
    scheduler = pipe.scheduler
    if scheduler.config.get("variance_type") not in _LEARNED_VARIANCE:
        yield pipe
        return
    pipe.scheduler = type(scheduler).from_config(scheduler.config, variance_type="fixed_small")
    try:
        yield pipe
    finally:
        pipe.scheduler = scheduler


def denoiser_name(pipe) -> str:
    """The pipeline component that denoises ("unet" or "transformer"), as the family registry names them."""
    names = dict.fromkeys(known.denoiser for known in all_families())
    for name in names:
        if name in pipe.components:
            return name
    raise ValueError(f"{type(pipe).__name__} has none of the denoisers dreamcore draws with ({', '.join(names)})")


def native_size(pipe) -> tuple[int, int]:
    """(width, height) the model was trained at and draws when given no size: the denoiser's sample size
    times the VAE's scale factor (Flux's transformer has no sample size: its pipeline's default)."""
    denoiser = getattr(pipe, denoiser_name(pipe))
    sample_size = getattr(denoiser.config, "sample_size", None) or pipe.default_sample_size
    edge = int(sample_size) * int(getattr(pipe, "vae_scale_factor", 1))  # pixel space (DeepFloyd IF): no VAE
    return edge, edge


def source_image(uri: str, size: tuple[int, int]) -> Image.Image:
    """The image at `uri` (path or fsspec URL), upright RGB, scaled and centre-cropped to `size` (width, height)."""
    from PIL import ImageOps

    from dreamcore.data.images import load_rgb

    fs, path = url_to_fs(uri)
    return ImageOps.fit(load_rgb(fs.cat_file(path)), size)


def img2img_steps(num_inference_steps: int, strength: float) -> int:
    """Sampling steps for img2img at `strength`: at least enough that it runs one step.

    diffusers runs int(steps x strength) of them and decodes nothing at all when that is 0 (a few
    validation steps at strength 0.2), so the count is raised to ceil(1 / strength) when needed.
    """
    return max(num_inference_steps, math.ceil(1.0 / strength - 1e-9))
