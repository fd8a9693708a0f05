"""The text-to-image pipeline that draws class images: scheduler, precision, device, fingerprint."""

from __future__ import annotations

from typing import Any

from dreamcore.drawing.cascade import chained
from dreamcore.models import ModelFamily, detect_family, load_pipeline, model_fingerprint
from dreamcore.models.quanto import quantise_weights
from dreamcore.storage import digest_of

SCHEDULER_CLASSES = {
    "ddim": "DDIMScheduler",
    "ddpm": "DDPMScheduler",
    "pndm": "PNDMScheduler",
    "euler": "EulerDiscreteScheduler",
    "euler_a": "EulerAncestralDiscreteScheduler",
    "dpm++": "DPMSolverMultistepScheduler",
    "unipc": "UniPCMultistepScheduler",
}
# The base_model_precision values this stage can draw at (optimum-quanto on the denoiser).
DRAWING_PRECISIONS = ("int8-quanto",)
_COMPONENTS = ("vae", "text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2", "scheduler",
               "text_encoder_3", "tokenizer_3")


def pipeline_fingerprint(path_or_id: str, family: ModelFamily | None = None) -> str:
    """A 16-hex digest of every component that shapes a generated image (denoiser, VAE, encoders, ...); `family`:
    the model's, when the caller has detected it already."""
    denoiser = (family or detect_family(path_or_id)).denoiser
    parts = {denoiser: model_fingerprint(path_or_id, denoiser)}  # raises the clear error if absent
    for component in _COMPONENTS:
        try:
            parts[component] = model_fingerprint(path_or_id, component)
        except FileNotFoundError:
            continue  # e.g. SD 1.x has no text_encoder_2
    return digest_of(parts)[:16]


def check_precision(base_model_precision: str) -> None:
    """Raise ValueError naming the key unless this stage can generate at that precision."""
    if base_model_precision != "no_change" and base_model_precision not in DRAWING_PRECISIONS:
        supported = ", ".join(["no_change", *DRAWING_PRECISIONS])
        raise ValueError(
            f"class_images.base_model_precision {base_model_precision!r} is not supported for class-image "
            f"generation (supported: {supported}); set class_images.base_model_precision to one of those"
        )


def generation_dtype(mixed_precision: str, device: str):
    """torch dtype of the weights: half precision on CUDA when asked, float32 on CPU (half is slow or missing there)."""
    import torch

    if device.startswith("cuda") and mixed_precision in ("fp16", "bf16"):
        return torch.float16 if mixed_precision == "fp16" else torch.bfloat16
    return torch.float32


def load_sampler(
    path_or_id: str,
    scheduler: str,
    base_model_precision: str = "no_change",
    mixed_precision: str = "no",
    device: str | None = None,
    family: ModelFamily | None = None,
) -> Any:
    """A text-to-image pipeline with the chosen scheduler, quantised UNet (if asked), on `device`; `family`: the
    model's, when the caller's plan holds it (else detected here)."""
    import torch

    check_precision(base_model_precision)
    family = family or detect_family(path_or_id)
    if family.refines_images:
        raise ValueError(
            f"class_images.model {path_or_id!r} is an image-to-image {family.name} model (it refines, it cannot "
            "draw): class images need a text-to-image model; set class_images.model to the SDXL base"
        )
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    pipe = load_pipeline(path_or_id, family=family, torch_dtype=generation_dtype(mixed_precision, device))
    if scheduler != "default" and not family.ddpm_samplers:
        raise ValueError(
            f"class_images.scheduler {scheduler!r} is a DDPM sampler; {family.name} models draw with their own "
            "flow-matching scheduler: set class_images.scheduler to 'default'"
        )
    if scheduler != "default":
        import diffusers

        scheduler_class = getattr(diffusers, SCHEDULER_CLASSES[scheduler])
        pipe.scheduler = scheduler_class.from_config(pipe.scheduler.config)
    if base_model_precision in DRAWING_PRECISIONS:
        quantise_weights(getattr(pipe, family.denoiser), base_model_precision)
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)


def with_upscaler(pipe, upscaler: str, mixed_precision: str = "no"):
    """`pipe` (text-to-image) followed by the upscaler model `upscaler` (DeepFloyd IF stage II), on pipe's device:
    the pair draws from prompts at the upscaler's size."""
    family = detect_family(upscaler)
    device = str(pipe._execution_device)
    second = load_pipeline(upscaler, family=family, torch_dtype=generation_dtype(mixed_precision, device))
    second.set_progress_bar_config(disable=True)
    return chained(second.to(device), pipe, family.upscale_factor)
