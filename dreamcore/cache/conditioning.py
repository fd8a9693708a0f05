"""Mask (conditioning) datasets: pairing with their image dataset and preparing masks exactly as their image.

A mask pairs with an image by relative path without extension ("people/anna.jpg" ↔
"people/anna.png"), never by base name alone, so same-named files in different folders stay
apart. Masks are cropped with the image's own CropPlan and stored at latent resolution in the
image's VAE-cache row (one row read gives both, and they cannot drift apart). White (255) means
"train here", black (0) means "ignore".
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
    by_name: dict[str, dict] = {}
    rejected: dict[str, str] = {}
    for row in mask_rows:
        if row["status"] == "skipped":  # not an image (a stray .txt, a GIF): no mask candidate
            continue
        name = pairing_name(row["path"])
        if row["status"] != "ok":
            rejected[name] = f"mask {row['path']} was rejected at ingest: {row['reason']}"
            continue
        if name in by_name:
            raise ValueError(
                f"mask dataset {mask_dataset_id!r}: {by_name[name]['path']} and {row['path']} both pair with "
                f"{name}.*; keep one mask per image"
            )
        by_name[name] = row
    pairs: dict[str, dict | None] = {}
    missing: list[str] = []
    for row in image_rows:
        name = pairing_name(row["path"])
        pairs[row["path"]] = by_name.get(name)
        if name not in by_name:
            missing.append(f"  {row['path']}: {rejected.get(name, f'no mask named {name}.* in the mask dataset')}")
    if missing and not allow_missing:
        raise MissingMaskError(
            f"dataset {dataset_id!r}: {len(missing)} image(s) have no usable mask in conditioning dataset "
            f"{mask_dataset_id!r} (masks pair by relative path without extension):\n"
            + "\n".join(missing)
            + f'\nAdd the masks, or set "allow_missing_masks": true on {mask_dataset_id!r} to train those '
            "images on their whole area."
        )
    return pairs


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
