"""Stage "masks" (user masks): check the masks a user provides instead of generating them.

Every accepted image needs exactly one mask (paired by path without extension), of the image's
upright size, decodable and convertible to grayscale. All problems are reported at once, each
naming its file. A passing check writes a coverage report and a preview grid.
"""

from __future__ import annotations

import posixpath

import numpy as np

from dreamcore.config import DatasetSpec
from dreamcore.data.images import inspect_image, is_image_name, load_rgb
from dreamcore.data.ingest import scan_dataset
from dreamcore.data.sources import dataset_fs
from dreamcore.masks.generate import STAGE, VERSION, accepted_images
from dreamcore.masks.postprocess import mask_coverage
from dreamcore.masks.preview import MAX_ROWS, preview_grid
from dreamcore.storage import ArtifactStore, StageResult, digest_of, run_stage, stage_key


class MaskCheckError(ValueError):
    """User-provided masks that do not fit their images."""


def user_masks_key(image: DatasetSpec, rows: list[dict], masks: DatasetSpec) -> str:
    """Stage key: the accepted images (path + content) and the mask files' contents."""
    images = [(row["path"], row["digest"]) for row in accepted_images(rows)]
    upstream = {"images": digest_of(images), "masks": scan_dataset(masks).fingerprint()}
    return stage_key(STAGE, VERSION, {"mode": "user", "dataset": image.id, "masks": masks.id}, upstream)


def check_user_masks(store: ArtifactStore, image: DatasetSpec, rows: list[dict], masks: DatasetSpec, *,
                     key: str | None = None) -> StageResult:
    """Check (or reuse the committed check of) `masks` against `image`'s accepted manifest rows (`key`: the
    stage key when a plan holds it)."""
    key = key or user_masks_key(image, rows, masks)

    def build(folder: str) -> StageResult:
        entries, problems = _check(image, accepted_images(rows), masks)
        if problems:
            listed = "\n".join(f"  - {p}" for p in problems)
            raise MaskCheckError(
                f"dataset {masks.id!r} (masks of {image.id!r}, {masks.instance_data_dir}): "
                f"{len(problems)} problem(s):\n{listed}"
            )
        store.write_json(f"{folder}/report.json", [{k: v for k, v in e.items() if k != "mask_image"} for e in entries])
        pairs = [(_image(image, e["path"]), e["mask_image"]) for e in entries[:MAX_ROWS]]
        store.write_bytes(f"{folder}/preview.png", preview_grid(pairs))
        return StageResult(
            stage=STAGE,
            key=key,
            output_uri=store.uri(folder),
            digest=digest_of([(e["mask"], e["coverage"]) for e in entries]),
            counts={"masks": len(entries), "undetected": 0},
            report_uri=store.uri(f"{folder}/report.json"),
            details={
                "mode": "user",
                "dataset_id": image.id,
                "conditioning_dataset": masks.id,
                "data_uri": masks.instance_data_dir,
                "report": f"{folder}/report.json",
                "preview": f"{folder}/preview.png",
                "undetected": [],
            },
        )

    result, _ = run_stage(store, STAGE, key, build)
    return result


def _check(image: DatasetSpec, rows: list[dict], masks: DatasetSpec) -> tuple[list[dict], list[str]]:
    fs, root = dataset_fs(masks)
    by_stem: dict[str, list[str]] = {}
    for path in sorted(fs.find(root)):
        relative = posixpath.relpath(path, root)
        if is_image_name(relative):
            by_stem.setdefault(posixpath.splitext(relative)[0], []).append(relative)
    entries, problems = [], []
    for row in rows:
        stem = posixpath.splitext(row["path"])[0]
        found = by_stem.get(stem, [])
        if not found:
            problems.append(
                f"{row['path']}: no mask (expected {stem}.png or another image named {stem}.* in the mask folder)"
            )
            continue
        if len(found) > 1:
            problems.append(f"{row['path']}: more than one mask ({', '.join(found)}); keep exactly one")
            continue
        entry, problem = _check_one(fs.cat_file(posixpath.join(root, found[0])), found[0], row)
        if problem:
            problems.append(problem)
        else:
            entries.append(entry)
    return entries, problems


def _check_one(data: bytes, name: str, row: dict) -> tuple[dict | None, str]:
    check = inspect_image(data, minimum_image_size=None)
    if not check.ok:
        return None, f"mask {name} (for {row['path']}): {check.reason}"
    if (check.width, check.height) != (row["width"], row["height"]):
        return None, (
            f"mask {name} is {check.width}x{check.height} but its image {row['path']} is "
            f"{row['width']}x{row['height']} (upright): masks must have their image's size"
        )
    try:
        gray = load_rgb(data).convert("L")
    except (ValueError, OSError) as error:
        return None, f"mask {name} (mode {check.mode_in}) cannot be read as grayscale: {error}"
    coverage = mask_coverage(np.asarray(gray, dtype=np.float32) / 255.0)
    return {
        "path": row["path"],
        "mask": name,
        "mode": check.mode_in,
        "coverage": round(coverage, 6),
        "mask_image": gray,
    }, ""


def _image(spec: DatasetSpec, path: str):
    fs, root = dataset_fs(spec)
    return load_rgb(fs.cat_file(posixpath.join(root, path)))

