"""Stage "masks" (generate): a CLIPSeg mask for every accepted image of a dataset.

Each mask is cached per image under `masks/_per_image/<mask key>` (image digest + settings +
model fingerprint), so an interrupted run, a grown dataset or a rerun after a caption change
only computes the masks it lacks. The committed stage folder holds the conditioning dataset
(`data/<image path without extension>.png`, the image's upright size), a report, a preview grid
and a dataset config snippet.
"""

from __future__ import annotations

import io
import posixpath
from collections.abc import Callable
from dataclasses import dataclass

from dreamcore.config import DatasetSpec, RunConfig
from dreamcore.config.options.generation import MaskGenerationOptions
from dreamcore.data.images import load_rgb
from dreamcore.data.sources import dataset_fs
from dreamcore.masks.clipseg import MaskModel, clipseg_fingerprint, load_mask_model, subject_probabilities
from dreamcore.masks.datasets import mask_dataset_spec
from dreamcore.masks.postprocess import finish_mask, mask_to_image
from dreamcore.masks.preview import MAX_ROWS, preview_grid
from dreamcore.storage import ArtifactStore, StageResult, digest_of, run_stage, stage_key

STAGE = "masks"
VERSION = 1
DATA_FOLDER = "data"
PER_IMAGE = f"{STAGE}/_per_image"


class NothingDetectedError(RuntimeError):
    """Strict mode: the prompt was not found in some images."""


class MaskNameClashError(ValueError):
    """Two images would share one mask file (same path, different extension)."""


@dataclass(frozen=True)
class MaskOutcome:
    """The stage result plus how many masks this call computed with the model (0 when all cached)."""

    result: StageResult
    generated: int


def mask_settings(options: MaskGenerationOptions) -> dict:
    """The options that change a mask's pixels (and so its per-image key)."""
    return options.model_dump(
        include={"prompt", "threshold", "padding_px", "feather_px", "invert", "min_area_fraction"}
    )


def mask_file_name(image_path: str) -> str:
    """Relative path of an image's mask: the image path with a .png extension."""
    return posixpath.splitext(image_path)[0] + ".png"


def accepted_images(rows: list[dict]) -> list[dict]:
    """Manifest rows of the images ingest accepted (the ones that are trained, so need masks)."""
    return [row for row in rows if row["status"] == "ok"]


def masks_key(options: MaskGenerationOptions, rows: list[dict], fingerprint: str) -> str:
    """Stage key: the settings, strictness, the accepted images (path + content) and the model."""
    images = [(row["path"], row["digest"]) for row in accepted_images(rows)]
    config = mask_settings(options) | {
        "mode": "generate",
        "strict": options.strict,
        "conditioning_dataset": options.conditioning_dataset_id,
    }
    return stage_key(STAGE, VERSION, config, upstream={"images": digest_of(images)}, model_fingerprint=fingerprint)


def image_mask_key(image_digest: str, options: MaskGenerationOptions, fingerprint: str) -> str:
    """Per-image cache key: the same image with the same settings and model gives the same mask."""
    return digest_of({"image": image_digest, "settings": mask_settings(options), "model": fingerprint})[:24]


def generate_masks(
    store: ArtifactStore,
    config: RunConfig,
    image: DatasetSpec,
    rows: list[dict],
    *,
    load_model: Callable[[str], MaskModel] = load_mask_model,
    fingerprint: str | None = None,
    key: str | None = None,
) -> MaskOutcome:
    """Run (or reuse) mask generation for `image`'s accepted manifest rows under config.mask_generation
    (`fingerprint`, `key`: CLIPSeg's fingerprint and the stage key when a plan holds them)."""
    options = config.training.mask_generation
    if options is None:
        raise ValueError("mask_generation is not set in the training config")
    fingerprint = fingerprint or clipseg_fingerprint(options.model)
    key = key or masks_key(options, rows, fingerprint)
    generated = 0

    def build(folder: str) -> StageResult:
        nonlocal generated
        images = accepted_images(rows)
        _check_unique_names(image, images)
        entries, generated = _write_masks(store, folder, image, images, options, fingerprint, load_model)
        undetected = [e["path"] for e in entries if not e["detected"]]
        if options.strict and undetected:
            raise NothingDetectedError(
                f"dataset {image.id!r}: mask_generation.prompt {options.prompt!r} found nothing in "
                f"{len(undetected)} image(s): {', '.join(undetected)}. Lower mask_generation.threshold, change "
                "the prompt, or set mask_generation.strict to false to give them all-white masks"
            )
        return _finish(store, config, folder, key, image, entries, options)

    result, _ = run_stage(store, STAGE, key, build)
    return MaskOutcome(result, generated)


def _write_masks(store, folder, image, images, options, fingerprint, load_model) -> tuple[list[dict], int]:
    from tqdm.auto import tqdm

    fs, root = dataset_fs(image)
    model: MaskModel | None = None
    entries, generated = [], 0
    for row in tqdm(images, desc=f"masks {image.id}", unit="image"):
        cache = f"{PER_IMAGE}/{image_mask_key(row['digest'], options, fingerprint)}"
        if store.exists(f"{cache}.json"):  # the JSON is written after the PNG: its presence means done
            png, record = store.read_bytes(f"{cache}.png"), store.read_json(f"{cache}.json")
        else:
            model = model or load_model(options.model)
            picture = load_rgb(fs.cat_file(posixpath.join(root, row["path"])))
            finished = finish_mask(subject_probabilities(model, picture, options.prompt), picture.size, options)
            png = _png(mask_to_image(finished.mask))
            record = {"coverage": round(finished.coverage, 6), "detected": finished.detected}
            store.write_bytes(f"{cache}.png", png)
            store.write_json(f"{cache}.json", record)
            generated += 1
        name = mask_file_name(row["path"])
        store.write_bytes(f"{folder}/{DATA_FOLDER}/{name}", png)
        flag = "" if record["detected"] else "nothing detected: all-white mask (the whole image trains)"
        entries.append({"path": row["path"], "mask": name, **record, "flag": flag})
    return entries, generated


def _finish(store, config, folder, key, image, entries, options) -> StageResult:
    data_uri = store.uri(f"{folder}/{DATA_FOLDER}")
    snippet = mask_dataset_spec(config, image, options, data_uri).model_dump(mode="json", exclude_defaults=True)
    store.write_json(f"{folder}/dataset.json", snippet)
    store.write_json(f"{folder}/report.json", entries)
    store.write_bytes(f"{folder}/preview.png", _preview(store, folder, image, entries))
    undetected = [e["path"] for e in entries if not e["detected"]]
    return StageResult(
        stage=STAGE,
        key=key,
        output_uri=store.uri(folder),
        digest=digest_of([(e["mask"], e["coverage"], e["detected"]) for e in entries]),
        counts={"masks": len(entries), "undetected": len(undetected)},
        report_uri=store.uri(f"{folder}/report.json"),
        details={
            "mode": "generate",
            "dataset_id": image.id,
            "conditioning_dataset": options.conditioning_dataset_id,
            "data_uri": data_uri,
            "report": f"{folder}/report.json",
            "preview": f"{folder}/preview.png",
            "snippet": f"{folder}/dataset.json",
            "undetected": undetected,
        },
    )


def _preview(store: ArtifactStore, folder: str, image: DatasetSpec, entries: list[dict]) -> bytes:
    from PIL import Image

    fs, root = dataset_fs(image)
    pairs = []
    for entry in entries[:MAX_ROWS]:
        picture = load_rgb(fs.cat_file(posixpath.join(root, entry["path"])))
        mask = Image.open(io.BytesIO(store.read_bytes(f"{folder}/{DATA_FOLDER}/{entry['mask']}")))
        pairs.append((picture, mask))
    return preview_grid(pairs)


def _check_unique_names(image: DatasetSpec, rows: list[dict]) -> None:
    seen: dict[str, str] = {}
    for row in rows:
        name = mask_file_name(row["path"])
        if name in seen:
            raise MaskNameClashError(
                f"dataset {image.id!r}: {seen[name]} and {row['path']} would share the mask {name} "
                "(masks pair with images by path without extension): rename one of them"
            )
        seen[name] = row["path"]


def _png(image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()

