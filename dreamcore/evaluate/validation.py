"""Validation images: the configured prompts, drawn with fixed seeds by a stock diffusers pipeline.

Image (prompt p, number i) always uses seed validation_seed + i on a CPU generator, whatever the
weights or the device, so the base model and every checkpoint draw from the same starting noise
and their images compare side by side. An SDXL refiner (image-to-image) does not draw from
prompts: its plan lists dataset images (`sources`, built by dreamcore.evaluate.plans), each
refined with its own caption at `strength`, with the aesthetic-score conditioning it was trained on.
SD3 and Flux draw through their stock pipelines too, with the T5 length the text cache used.
Several validation sizes (validation_resolution "1024x1024,1280x768") repeat each prompt once per size:
entry k of the plan is (prompt, size) and every seed draws it.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dreamcore.drawing.pipelines import (
    denoiser_name,
    img2img_steps,
    native_size,
    negative_prompt_option,
    refines_images,
    size_options,
    source_image,
)
from dreamcore.evaluate.previews import step_callback_options

if TYPE_CHECKING:
    from PIL import Image

    from dreamcore.config import TrainingConfig


@dataclass(frozen=True)
class ValidationPlan:
    """What to draw: prompts x seeds, and how."""

    prompts: tuple[str, ...]
    seeds: tuple[int, ...]
    negative_prompt: str | None
    num_inference_steps: int
    guidance: float
    size: tuple[int, int] | None  # (width, height); None: the model's default
    sources: tuple[str, ...] = ()  # refiner: the image (path or URL) each prompt refines
    strength: float = 1.0  # refiner: img2img strength
    aesthetic_score: float = 7.0  # refiner: time-id score of the conditional branch
    negative_aesthetic_score: float = 2.5  # refiner: time-id score of the unconditional branch
    max_sequence_length: int | None = None  # T5 tokens (tokenizer_max_length) for pipelines that take it
    sizes: tuple[tuple[int, int], ...] = ()  # per prompt entry (several validation sizes); empty: `size` for all
    guidance_rescale: float = 0.0  # validation_guidance_rescale, for pipelines that take it
    source_scale: int = 1  # an upscaler (DeepFloyd IF stage II): sources are shrunk by it, then upscaled back
    edits: bool = False  # an edit model (Flux Kontext): each prompt edits its source, the reference image

    @classmethod
    def from_config(cls, config: TrainingConfig) -> ValidationPlan:
        """The plan of a training config (no prompts when validation is disabled)."""
        first = config.validation_seed if config.validation_seed is not None else (config.seed or 0)
        prompts = () if config.validation_disable else tuple(config.validation_prompts)
        sizes = config.validation_sizes()
        per_entry: tuple[tuple[int, int], ...] = ()
        if len(sizes) > 1:  # every prompt once per size
            prompts = tuple(prompt for prompt in prompts for _ in sizes)
            per_entry = tuple(sizes) * (len(prompts) // len(sizes))
        return cls(prompts, tuple(first + i for i in range(config.num_validation_images)),
                   config.validation_negative_prompt, config.validation_num_inference_steps,
                   config.validation_guidance, config.validation_size(), strength=config.refiner_training_strength,
                   aesthetic_score=config.data_aesthetic_score,
                   negative_aesthetic_score=config.refiner_negative_aesthetic_score,
                   max_sequence_length=config.tokenizer_max_length, sizes=per_entry,
                   guidance_rescale=config.validation_guidance_rescale)

    def size_of(self, prompt_index: int) -> tuple[int, int] | None:
        """(width, height) of prompt entry `prompt_index`, or None for the model's default."""
        return self.sizes[prompt_index] if self.sizes else self.size

    def as_dict(self) -> dict[str, Any]:
        return {"prompts": list(self.prompts), "seeds": list(self.seeds), "negative_prompt": self.negative_prompt,
                "num_inference_steps": self.num_inference_steps, "guidance": self.guidance,
                "size": list(self.size) if self.size else None, "sources": list(self.sources),
                "strength": self.strength, "aesthetic_score": self.aesthetic_score,
                "negative_aesthetic_score": self.negative_aesthetic_score,
                # only when set: plans (and evaluate keys) of runs that never set them stay as they were
                **({"max_sequence_length": self.max_sequence_length} if self.max_sequence_length else {}),
                **({"sizes": [list(s) for s in self.sizes]} if self.sizes else {}),
                **({"guidance_rescale": self.guidance_rescale} if self.guidance_rescale else {}),
                **({"source_scale": self.source_scale} if self.source_scale != 1 else {}),
                **({"edits": True} if self.edits else {})}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ValidationPlan:
        """The plan of `as_dict()` (e.g. read back from an evaluate folder's run.json)."""
        return cls(**{**values, "prompts": tuple(values["prompts"]), "seeds": tuple(values["seeds"]),
                      "size": tuple(values["size"]) if values.get("size") else None,
                      "sources": tuple(values.get("sources", ())),
                      "sizes": tuple(tuple(s) for s in values.get("sizes", ()))})

    @property
    def cells(self) -> list[tuple[int, int]]:
        """(prompt index, seed) of every image, in grid column order."""
        return [(p, seed) for p in range(len(self.prompts)) for seed in self.seeds]

    def column_label(self, prompt_index: int, seed: int) -> str:
        if self.sizes:
            width, height = self.sizes[prompt_index]
            return f"p{prompt_index} seed {seed} {width}x{height}"
        return f"p{prompt_index} seed {seed}"


@dataclass
class ValidationImage:
    """One drawn image and where it belongs."""

    prompt_index: int
    prompt: str
    seed: int
    image: Image.Image

    @property
    def file_name(self) -> str:
        return f"p{self.prompt_index:02d}-seed{self.seed}.png"


def generate_images(pipe, plan: ValidationPlan, preview: Callable[[str], Callable | None] | None = None,
                    label: str = "") -> list[ValidationImage]:
    """Draw every (prompt, seed) of the plan; `preview(label)` may give a callback_on_step_end per image."""
    import torch
    from tqdm.auto import tqdm

    images = []
    device = pipe._execution_device
    autocast = _autocast(getattr(pipe, denoiser_name(pipe)), device)
    # A progress bar on a terminal only (tqdm's disable=None): big images take minutes each on CPU.
    for prompt_index, seed in tqdm(plan.cells, desc=f"{label}: validation".strip(": "), unit="image", disable=None):
        prompt = plan.prompts[prompt_index]
        options = _call_options(pipe, plan, prompt_index)
        callback = preview(f"{label} p{prompt_index} seed {seed}".strip()) if preview else None
        if callback is not None:
            size = (options["width"], options["height"]) if "width" in options else native_size(pipe)
            options.update(step_callback_options(callback, pipe, size))
        with torch.no_grad(), autocast:
            out = pipe(prompt=prompt, **negative_prompt_option(pipe, plan.negative_prompt),
                       generator=torch.Generator("cpu").manual_seed(seed), **options)
        images.append(ValidationImage(prompt_index, prompt, seed, out.images[0]))
    return images


def generate_batched(pipe, plan: ValidationPlan, jobs: Sequence[tuple[str, int]], batch_size: int,
                     description: str = "") -> list[Image.Image]:
    """Draw (prompt, seed) jobs with `plan`'s settings, up to `batch_size` per pipeline call.

    Each image has its own CPU generator, so it starts from the noise it would start from drawn
    alone. A progress bar (tqdm, shown on a terminal only) counts the images.
    """
    import torch
    from tqdm.auto import tqdm

    autocast = _autocast(getattr(pipe, denoiser_name(pipe)), pipe._execution_device)
    options = _call_options(pipe, plan, 0)
    images: list[Image.Image] = []
    with tqdm(total=len(jobs), desc=description or None, unit="image", disable=None) as bar:
        for start in range(0, len(jobs), batch_size):
            batch = jobs[start:start + batch_size]
            negative = [plan.negative_prompt] * len(batch) if plan.negative_prompt else None
            with torch.no_grad(), autocast:
                out = pipe(prompt=[prompt for prompt, _ in batch], **negative_prompt_option(pipe, negative),
                           generator=[torch.Generator("cpu").manual_seed(seed) for _, seed in batch], **options)
            images += out.images
            bar.update(len(batch))
    return images


def _call_options(pipe, plan: ValidationPlan, prompt_index: int) -> dict[str, Any]:
    options: dict[str, Any] = {"num_inference_steps": plan.num_inference_steps, "guidance_scale": plan.guidance}
    if plan.edits:  # an edit model draws from the reference at the drawn size; max_area keeps that size
        width, height = plan.size_of(prompt_index) or native_size(pipe)
        options.update(image=source_image(plan.sources[prompt_index], (width, height)), _auto_resize=False,
                       **size_options(pipe, width, height))
    elif refines_images(pipe):  # an image-to-image model (the refiner) refines dataset images instead of drawing
        if not plan.sources:
            raise ValueError("a refiner validates by refining dataset images, but the validation plan has none; "
                             "build it with dreamcore.evaluate.plans.validation_plan_for")

        width, height = plan.size_of(prompt_index) or native_size(pipe)
        if plan.source_scale > 1:  # an upscaler upscales the dataset image shrunk to its input size
            image = source_image(plan.sources[prompt_index], (width // plan.source_scale, height // plan.source_scale))
            options.update(image=image, width=width, height=height)
        else:
            options.update(image=source_image(plan.sources[prompt_index], (width, height)), strength=plan.strength,
                           aesthetic_score=plan.aesthetic_score,
                           num_inference_steps=img2img_steps(plan.num_inference_steps, plan.strength),
                           negative_aesthetic_score=plan.negative_aesthetic_score)
    elif plan.size_of(prompt_index) is not None:
        options.update(size_options(pipe, *plan.size_of(prompt_index)))
    if plan.guidance_rescale:
        if "guidance_rescale" not in inspect.signature(pipe.__call__).parameters:
            raise ValueError(f"validation_guidance_rescale is {plan.guidance_rescale} but {type(pipe).__name__} "
                             "takes no guidance_rescale; set validation_guidance_rescale to 0")
        options["guidance_rescale"] = plan.guidance_rescale
    if plan.max_sequence_length and "max_sequence_length" in inspect.signature(pipe.__call__).parameters:
        options["max_sequence_length"] = plan.max_sequence_length
    return options


def _autocast(unet, device):
    """Autocast on CUDA when the UNet is not float32 (live trained UNets mix fp32 adapters and a half base)."""
    import torch

    dtype = next(unet.parameters()).dtype
    if torch.device(device).type == "cuda" and dtype != torch.float32:
        return torch.autocast("cuda", dtype=dtype)
    return contextlib.nullcontext()


def live_unet(pipe, unet):
    """Context: `pipe` draws with `unet` (a training UNet or transformer), in eval mode; restores both afterwards."""
    name = denoiser_name(pipe)

    @contextlib.contextmanager
    def swapped():
        previous, was_training = getattr(pipe, name), unet.training
        setattr(pipe, name, unet)
        unet.eval()
        try:
            yield pipe
        finally:
            unet.train(was_training)
            setattr(pipe, name, previous)

    return swapped()
