"""Conditioning datasets: masks and an edit model's reference images, paired with their image dataset.

A mask pairs with an image by relative path without extension ("people/anna.jpg" ↔
"people/anna.png"), never by base name alone, so same-named files in different folders stay
apart. Masks are cropped with the image's own CropPlan and stored at latent resolution in the
image's VAE-cache row (one row read gives both, and they cannot drift apart). White (255) means
"train here", black (0) means "ignore". References pair the same way (cache/vae.py caches them as rows of
their own, keyed like any image, and the edit image's index row names them).
"""

from __future__ import annotations

import posixpath
from typing import TYPE_CHECKING

import numpy as np

from dreamcore.data.buckets import CropPlan, apply_plan

if TYPE_CHECKING:
    from PIL import Image


class MissingMaskError(ValueError):
    """Images of a masked dataset have no usable mask."""


class MissingReferenceError(ValueError):
    """Edit images have no usable reference image."""


def pairing_name(relative_path: str) -> str:
    """The name an image and its mask share: the relative path without its extension."""
    return posixpath.splitext(relative_path)[0]


def pair_masks(
    image_rows: list[dict],
    mask_rows: list[dict],
    *,
    dataset_id: str,
    mask_dataset_id: str,
    allow_missing: bool,
) -> dict[str, dict | None]:
    """image path -> its accepted mask manifest row (None: all-white, only with allow_missing).

    Raises MissingMaskError listing every image without a usable mask, and ValueError when two
    mask files share one pairing name.
    """
    pairs, missing = _pair_by_name(image_rows, mask_rows, "mask", mask_dataset_id)
    if missing and not allow_missing:
        raise MissingMaskError(
            f"dataset {dataset_id!r}: {len(missing)} image(s) have no usable mask in conditioning dataset "
            f"{mask_dataset_id!r} (masks pair by relative path without extension):\n"
            + "\n".join(missing)
            + f'\nAdd the masks, or set "allow_missing_masks": true on {mask_dataset_id!r} to train those '
            "images on their whole area."
        )
    return pairs


def pair_references(image_rows: list[dict], reference_rows: list[dict], *, dataset_id: str,
                    reference_dataset_id: str) -> dict[str, dict]:
    """edit image path -> its reference's accepted manifest row. Raises MissingReferenceError naming every edit
    image without a usable reference (an edit model cannot train an image without it)."""
    pairs, missing = _pair_by_name(image_rows, reference_rows, "reference", reference_dataset_id)
    if missing:
        raise MissingReferenceError(
            f"dataset {dataset_id!r}: {len(missing)} edit image(s) have no usable reference in conditioning dataset "
            f"{reference_dataset_id!r} (references pair by relative path without extension):\n" + "\n".join(missing)
            + f"\nAdd each reference to {reference_dataset_id!r} under its edit image's relative path, or remove the "
            "edit image."
        )
    return pairs  # type: ignore[return-value]


def _pair_by_name(image_rows: list[dict], rows: list[dict], what: str,
                  dataset_id: str) -> tuple[dict[str, dict | None], list[str]]:
    """(image path -> the accepted row of `rows` sharing its pairing name or None, one line per unpaired image)."""
    by_name: dict[str, dict] = {}
    rejected: dict[str, str] = {}
    for row in rows:
        if row["status"] == "skipped":  # not an image (a stray .txt, a GIF): no candidate
            continue
        name = pairing_name(row["path"])
        if row["status"] != "ok":
            rejected[name] = f"{what} {row['path']} was rejected at ingest: {row['reason']}"
            continue
        if name in by_name:
            raise ValueError(
                f"{what} dataset {dataset_id!r}: {by_name[name]['path']} and {row['path']} both pair with "
                f"{name}.*; keep one {what} per image"
            )
        by_name[name] = row
    pairs: dict[str, dict | None] = {}
    missing: list[str] = []
    for row in image_rows:
        name = pairing_name(row["path"])
        pairs[row["path"]] = by_name.get(name)
        if name not in by_name:
            missing.append(f"  {row['path']}: {rejected.get(name, f'no {what} named {name}.* in the {what} dataset')}")
    return pairs, missing


def crop_mask(mask: Image.Image, plan: CropPlan, image_path: str) -> Image.Image:
    """The mask (grayscale) resized and cropped exactly like its image; size must match the image."""
    from PIL import Image as PILImage

    gray = mask.convert("L")
    if gray.size != plan.original_size:
        raise ValueError(
            f"mask for {image_path} is {gray.size[0]}x{gray.size[1]} but the image is "
            f"{plan.original_size[0]}x{plan.original_size[1]}; a mask must have its image's (upright) size"
        )
    return apply_plan(gray, plan, resample=PILImage.Resampling.BILINEAR)


def mask_at_latent_size(cropped: Image.Image, latent_size: tuple[int, int]) -> np.ndarray:
    """uint8 [h, w] mask at latent resolution (area average of the cropped mask's pixels)."""
    from PIL import Image as PILImage

    width, height = latent_size
    return np.asarray(cropped.resize((width, height), PILImage.Resampling.BOX), dtype=np.uint8)


def white_mask(latent_size: tuple[int, int]) -> np.ndarray:
    """An all-white (train everywhere) uint8 [h, w] mask."""
    width, height = latent_size
    return np.full((height, width), 255, dtype=np.uint8)
