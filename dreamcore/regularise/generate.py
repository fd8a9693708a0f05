"""Stage "class_images": regularisation images drawn by the base model, image i from seed base_seed + i.

Images are kept per image under `class_images/_per_image/<set key>/<i>.png`, where the set key
covers everything that shapes a picture except the count. So a crash at image 37 restarts at 37,
a larger count later generates only the new indices, and the committed stage folder
(`class_images/<key>/data/class_<i>.png` + `.txt` captions, a sample grid, a report and a
dataset config snippet) is assembled from those.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from dreamcore.config import RunConfig
from dreamcore.config.options.generation import ClassImageOptions
from dreamcore.data.images import content_digest
from dreamcore.drawing.pipelines import native_size, negative_prompt_option, size_options
from dreamcore.models import ModelFamily, detect_family, family_named
from dreamcore.regularise.datasets import regularisation_dataset_spec
from dreamcore.regularise.sampler import check_precision, load_sampler, pipeline_fingerprint, with_upscaler
from dreamcore.storage import ArtifactStore, StageResult, digest_of, run_stage, stage_key

STAGE = "class_images"
VERSION = 1
DATA_FOLDER = "data"
PER_IMAGE = f"{STAGE}/_per_image"
GRID_IMAGES = 16

Progress = Callable[[int, int], None]  # (images finished, images to make in this call)


@dataclass(frozen=True)
class ClassImageOutcome:
    """The stage result plus the indices this call generated (empty when all were already there)."""

    result: StageResult
    generated: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class ClassImagePlan:
    """What the stage will draw, resolved against the training config."""

    options: ClassImageOptions
    model: str
    base_model_precision: str
    mixed_precision: str
    fingerprint: str
    key: str = ""  # the stage key: the set, the count and the dataset id the images become (class_image_plan)
    family: str = ""  # the model's family, detected once by class_image_plan (not part of the key)
    # An upscaler base model (DeepFloyd IF stage II) upscaling what `model` (its stage I) draws; None: `model` alone.
    # In the fingerprint (class_image_plan), so not keyed again.
    upscaler: str | None = None

    def settings(self) -> dict:
        """Everything that shapes a picture except the count (so growing the set reuses images)."""
        return self.options.model_dump(
            mode="json",
            include={
                "prompt",
                "negative_prompt",
                "guidance_scale",
                "num_inference_steps",
                "scheduler",
                "resolutions",
                "base_seed",
            },
        ) | {"base_model_precision": self.base_model_precision, "mixed_precision": self.mixed_precision}

    @property
    def set_key(self) -> str:
        """Key of the per-image folder shared by every count of this set."""
        return digest_of({"settings": self.settings(), "model": self.fingerprint})[:20]

    def stage_key(self) -> str:
        """Stage key: the set, the count and the dataset id the images become."""
        config = self.settings() | {"count": self.options.count, "dataset": self.options.dataset}
        return stage_key(STAGE, VERSION, config, model_fingerprint=self.fingerprint)

    def seed(self, index: int) -> int:
        """Seed of image `index`: fixed, so a rerun draws the same picture."""
        return self.options.base_seed + index

    def size(self, index: int, native: tuple[int, int]) -> tuple[int, int]:
        """(width, height) of image `index`: the resolutions in turn, or the model's native size."""
        resolutions = self.options.resolutions
        if not resolutions:
            return native
        entry = resolutions[index % len(resolutions)]
        return (entry, entry) if isinstance(entry, int) else (int(entry[0]), int(entry[1]))


def class_image_plan(config: RunConfig) -> ClassImagePlan:
    """Resolve class_images against the training config: model, precisions, fingerprint."""
    options = config.training.class_images
    if options is None:
        raise ValueError("class_images is not set in the training config")
    training = config.training
    model = options.model or training.pretrained_model_name_or_path
    precision = options.base_model_precision or training.base_model_precision
    check_precision(precision)
    mixed = options.mixed_precision or training.mixed_precision
    family = detect_family(model)
    if "scheduler" not in options.model_fields_set and not family.ddpm_samplers:
        options = options.model_copy(update={"scheduler": "default"})  # SD3/Flux: the default dpm++ cannot apply
    fingerprint, upscaler = pipeline_fingerprint(model, family), _upscaler_of(config, options, family)
    if upscaler is not None:  # both models shape the images
        fingerprint = digest_of({"model": fingerprint, "upscaler": pipeline_fingerprint(upscaler)})[:16]
    plan = ClassImagePlan(options, model, precision, mixed, fingerprint, family=family.name, upscaler=upscaler)
    return replace(plan, key=plan.stage_key())  # keyed once: the task's cache key and the stage read it


def _upscaler_of(config: RunConfig, options: ClassImageOptions, family: ModelFamily) -> str | None:
    """The base model when it is an upscaler (it cannot draw from a prompt: class images are what the
    text-to-image class_images.model draws, upscaled by it), else None. ValueError naming the key when
    class_images.model is not such a model."""
    base = config.training.pretrained_model_name_or_path
    if options.model is None or options.model == base:
        base_family = family
    else:
        base_family = detect_family(base)
    if base_family.upscale_factor == 1:
        return None
    if options.model is None or family.refines_images:
        raise ValueError(
            f"class_images.model is {options.model!r}: the base model {base!r} is a {base_family.name} upscaler, "
            "which cannot draw class images from a prompt; set class_images.model to the text-to-image model "
            "whose images it upscales (DeepFloyd IF: a stage I model) and class images are drawn by it, then "
            "upscaled by the base model"
        )
    return base


def image_name(index: int) -> str:
    """File stem of class image `index` (zero-padded, so names sort in index order)."""
    return f"class_{index:06d}"


def missing_indices(store: ArtifactStore, plan: ClassImagePlan) -> list[int]:
    """Indices below count with no finished image in the per-image folder."""
    done = {name.rsplit("/", 1)[-1] for name in store.list(f"{PER_IMAGE}/{plan.set_key}")}
    return [i for i in range(plan.options.count) if f"{image_name(i)}.png" not in done]


def generate_class_images(
    store: ArtifactStore,
    config: RunConfig,
    on_progress: Progress | None = None,
    *,
    load: Callable[..., Any] = load_sampler,
    plan: ClassImagePlan | None = None,
) -> ClassImageOutcome:
    """Run (or reuse) class-image generation for config.class_images (`plan`: its class_image_plan, when the
    caller holds it)."""
    plan = plan or class_image_plan(config)
    generated: list[int] = []

    def build(folder: str) -> StageResult:
        missing = missing_indices(store, plan)
        if missing:
            family = family_named(plan.family) if plan.family else None  # a plan built without class_image_plan
            pipe = load(plan.model, plan.options.scheduler, plan.base_model_precision, plan.mixed_precision,
                        family=family)
            if plan.upscaler is not None:
                pipe = with_upscaler(pipe, plan.upscaler, plan.mixed_precision)
            _draw(store, plan, pipe, missing, generated, on_progress)
        return _assemble(store, config, plan, folder)

    result, _ = run_stage(store, STAGE, plan.key, build)
    return ClassImageOutcome(result, generated)


def _draw(store, plan: ClassImagePlan, pipe, missing: list[int], generated: list[int], on_progress) -> None:
    """Generate the missing images in index order, batching images of the same size."""
    import torch
    from tqdm.auto import tqdm

    native = native_size(pipe)
    options = plan.options
    with tqdm(total=len(missing), desc="class images", unit="image") as bar:
        for batch in _batches(missing, lambda i: plan.size(i, native), options.batch_size):
            width, height = plan.size(batch[0], native)
            # One generator per image: image i's noise depends on its seed only, not on its batch.
            generators = [torch.Generator("cpu").manual_seed(plan.seed(i)) for i in batch]
            with torch.no_grad():
                images = pipe(
                    prompt=[options.prompt] * len(batch),
                    **negative_prompt_option(pipe, [options.negative_prompt] * len(batch)),
                    **size_options(pipe, width, height),
                    num_inference_steps=options.num_inference_steps,
                    guidance_scale=options.guidance_scale,
                    generator=generators,
                ).images
            for index, image in zip(batch, images):
                store.write_bytes(f"{PER_IMAGE}/{plan.set_key}/{image_name(index)}.png", _png(image))
                generated.append(index)
                bar.update(1)
                if on_progress is not None:
                    on_progress(len(generated), len(missing))


def _batches(indices: list[int], size_of, batch_size: int) -> list[list[int]]:
    """Consecutive runs of indices that share a size, at most batch_size long (index order kept)."""
    batches: list[list[int]] = []
    for index in indices:
        if batches and len(batches[-1]) < batch_size and size_of(batches[-1][0]) == size_of(index):
            batches[-1].append(index)
        else:
            batches.append([index])
    return batches


def _assemble(store: ArtifactStore, config: RunConfig, plan: ClassImagePlan, folder: str) -> StageResult:
    """Copy images 0..count-1 into the dataset folder with captions; write grid, report, snippet."""
    from PIL import Image

    options = plan.options
    report, thumbnails = [], []
    for index in range(options.count):
        data = store.read_bytes(f"{PER_IMAGE}/{plan.set_key}/{image_name(index)}.png")
        store.write_bytes(f"{folder}/{DATA_FOLDER}/{image_name(index)}.png", data)
        store.write_bytes(f"{folder}/{DATA_FOLDER}/{image_name(index)}.txt", options.prompt.encode() + b"\n")
        with Image.open(io.BytesIO(data)) as image:
            report.append(
                {
                    "file": f"{image_name(index)}.png",
                    "seed": plan.seed(index),
                    "width": image.width,
                    "height": image.height,
                    "sha256": content_digest(data),
                }
            )
            if index < GRID_IMAGES:
                thumbnails.append(image.convert("RGB"))
    data_uri = store.uri(f"{folder}/{DATA_FOLDER}")
    snippet = regularisation_dataset_spec(config, options, data_uri).model_dump(mode="json", exclude_defaults=True)
    store.write_json(f"{folder}/dataset.json", snippet)
    store.write_json(f"{folder}/report.json", report)
    store.write_bytes(f"{folder}/samples.png", _grid(thumbnails))
    return StageResult(
        stage=STAGE,
        key=plan.key,
        output_uri=store.uri(folder),
        digest=digest_of(report),
        counts={"images": options.count},
        report_uri=store.uri(f"{folder}/report.json"),
        details={
            "dataset_id": options.dataset,
            "data_uri": data_uri,
            "model": plan.fingerprint,
            "report": f"{folder}/report.json",
            "samples": f"{folder}/samples.png",
            "snippet": f"{folder}/dataset.json",
        },
    )


def _grid(images: list, cell: int = 128) -> bytes:
    from PIL import Image, ImageOps

    columns = min(4, max(1, len(images)))
    rows = max(1, -(-len(images) // columns))
    grid = Image.new("RGB", (columns * cell, rows * cell), (32, 32, 32))
    for position, image in enumerate(images):
        thumb = ImageOps.contain(image, (cell, cell))
        x = (position % columns) * cell + (cell - thumb.width) // 2
        y = (position // columns) * cell + (cell - thumb.height) // 2
        grid.paste(thumb, (x, y))
    return _png(grid)


def _png(image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
