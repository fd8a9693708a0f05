"""Drawing with stock diffusers pipelines: which one, in which dtype, and img2img inputs.

Shared by evaluation, the refine stage and anything else that draws with the base model.
"""

from __future__ import annotations

import contextlib
import inspect
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


# Latent edge of a pipeline that states none (ZImagePipeline draws 1024 px when given no size: 128 x its VAE's 8).
_DEFAULT_LATENT_EDGE = 128


def native_size(pipe) -> tuple[int, int]:
    """(width, height) the model was trained at and draws when given no size: the denoiser's sample size
    times the VAE's scale factor (Flux's transformer has no sample size: its pipeline's default; Z-Image states
    neither: 128 latents, its 1024 px)."""
    denoiser = getattr(pipe, denoiser_name(pipe))
    sample_size = (getattr(denoiser.config, "sample_size", None) or getattr(pipe, "default_sample_size", None)
                   or _DEFAULT_LATENT_EDGE)
    edge = int(sample_size) * int(getattr(pipe, "vae_scale_factor", 1))  # pixel space (DeepFloyd IF): no VAE
    return edge, edge


def refines_images(pipe) -> bool:
    """An image-to-image pipeline (the SDXL refiner, an upscaler): its call takes the image to start from and no
    text-to-image family draws with it (Flux.2's pipelines take optional reference images; they draw from text)."""
    from_text = {name for known in all_families() if not known.refines_images
                 for name in (known.pipeline_class, *known.pipeline_classes)}
    return "image" in inspect.signature(pipe.__call__).parameters and type(pipe).__name__ not in from_text


def negative_prompt_option(pipe, negative_prompt) -> dict[str, Any]:
    """{"negative_prompt": ...} for a pipeline whose call takes one; {} for one that has none (Flux.2's pipelines
    draw their unconditional branch from the empty caption)."""
    return {"negative_prompt": negative_prompt} if "negative_prompt" in inspect.signature(pipe.__call__).parameters \
        else {}
def size_options(pipe, width: int, height: int) -> dict[str, int]:
    """The call options that draw `width` x `height`: plus max_area for a pipeline that otherwise rescales the
    asked size to its own area (FluxKontextPipeline: 1024^2)."""
    options = {"width": width, "height": height}
    if "max_area" in inspect.signature(pipe.__call__).parameters:
        options["max_area"] = width * height
    return options


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
