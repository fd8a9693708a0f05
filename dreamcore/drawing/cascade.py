"""Drawing from prompts with an upscaler (DeepFloyd IF stage II): a text-to-image first stage draws the
low-resolution image, the upscaler upscales it with the same prompt.

The cascade stands for its upscaler everywhere else (its components, device, LoRA loading, denoiser swaps), so
validation, the weights under evaluation and class-image drawing treat it as the upscaler's pipeline that happens
to draw from prompts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dreamcore.drawing.pipelines import load_validation_pipeline
from dreamcore.models import detect_family

if TYPE_CHECKING:
    from dreamcore.config import TrainingConfig
    from dreamcore.models import ModelFamily

class UpscalingCascade:
    """`first_stage` (text-to-image) drawing at 1/`factor` of the asked size, then `upscaler` (an image + prompt
    pipeline) returning the asked size. Attributes other than its own are the upscaler's (read and written)."""

    def __init__(self, first_stage, upscaler, factor: int) -> None:
        object.__setattr__(self, "first_stage", first_stage)
        object.__setattr__(self, "upscaler", upscaler)
        object.__setattr__(self, "factor", factor)

    def __getattr__(self, name: str) -> Any:
        return getattr(object.__getattribute__(self, "upscaler"), name)

    def __setattr__(self, name: str, value: Any) -> None:
        # A denoiser or scheduler swapped in by evaluation belongs to the upscaler: the weights under test are its.
        setattr(self.upscaler, name, value)

    def to(self, device) -> UpscalingCascade:
        """Both stages on `device`."""
        self.first_stage.to(device)
        self.upscaler.to(device)
        return self

    def set_progress_bar_config(self, **options) -> None:
        """Both stages' progress bars."""
        self.first_stage.set_progress_bar_config(**options)
        self.upscaler.set_progress_bar_config(**options)

    def __call__(self, prompt, negative_prompt=None, generator=None, width: int | None = None,
                 height: int | None = None, num_inference_steps: int = 50, guidance_scale: float = 7.0,
                 **options) -> Any:
        """The upscaler's output at (width, height) (default: its native size) for `prompt`, upscaling what the
        first stage draws at 1/factor of it; one `generator` (or one per image) seeds both stages in turn."""
        if width is None or height is None:
            edge = int(self.upscaler.unet.config.sample_size)
            width, height = width or edge, height or edge
        shared = {"prompt": prompt, "negative_prompt": negative_prompt, "generator": generator,
                  "num_inference_steps": num_inference_steps, "guidance_scale": guidance_scale}
        low = self.first_stage(**shared, width=width // self.factor, height=height // self.factor,
                               output_type="pt").images  # in [-1, 1], as the upscaler takes it
        return self.upscaler(image=low, width=width, height=height, **shared, **options)


def chained(upscaler, first_stage, factor: int):
    """`upscaler` drawing from prompts through `first_stage` (a text-to-image pipeline), or `upscaler` itself when
    `first_stage` is None."""
    return upscaler if first_stage is None else UpscalingCascade(first_stage, upscaler, factor)


def first_stage_of(config: TrainingConfig, family: ModelFamily) -> str | None:
    """The text-to-image model an upscaler family's config names for drawing from prompts (its
    `first_stage_key`), or None."""
    return getattr(config, family.first_stage_key) if family.first_stage_key else None


def with_first_stage(pipe, config: TrainingConfig, family: ModelFamily, device, dtype=None):
    """`pipe` (an upscaler's) chained after the first stage its config names, so validation draws from the
    prompts; `pipe` itself when none is named. ValueError naming the key when that model cannot draw from prompts."""
    model = first_stage_of(config, family)
    if model is None:
        return pipe
    first = detect_family(model)
    if first.refines_images:
        raise ValueError(f"{family.first_stage_key} {model!r} is a {first.name} model, which cannot draw from a "
                         f"prompt; name the text-to-image model whose images {family.name} upscales")
    return chained(pipe, load_validation_pipeline(model, device, dtype, family=first), family.upscale_factor)
