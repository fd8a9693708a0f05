"""Preview grid of masks: one row per image with the image, its mask and an overlay."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageOps

CELL_PX = 128
MAX_ROWS = 16
_IGNORED_TINT = np.array([220, 40, 40], dtype=np.float32)  # red over what the loss ignores


def overlay(image: Image.Image, mask: Image.Image) -> Image.Image:
    """The image with the ignored (black) part of the mask tinted red."""
    pixels = np.asarray(image.convert("RGB"), dtype=np.float32)
    ignored = 1.0 - np.asarray(mask.convert("L"), dtype=np.float32)[..., None] / 255.0
    tinted = pixels * (1 - 0.6 * ignored) + _IGNORED_TINT * 0.6 * ignored
    return Image.fromarray(np.clip(np.rint(tinted), 0, 255).astype(np.uint8), mode="RGB")


def preview_grid(pairs: list[tuple[Image.Image, Image.Image]]) -> bytes:
    """PNG bytes of a grid: for each (image, mask) pair, a row of image | mask | overlay."""
    rows = pairs[:MAX_ROWS]
    grid = Image.new("RGB", (3 * CELL_PX, max(1, len(rows)) * CELL_PX), (32, 32, 32))
    for row, (image, mask) in enumerate(rows):
        cells = (image.convert("RGB"), mask.convert("RGB"), overlay(image, mask))
        for column, cell in enumerate(cells):
            thumb = ImageOps.contain(cell, (CELL_PX, CELL_PX))
            x = column * CELL_PX + (CELL_PX - thumb.width) // 2
            y = row * CELL_PX + (CELL_PX - thumb.height) // 2
            grid.paste(thumb, (x, y))
    buffer = io.BytesIO()
    grid.save(buffer, format="PNG")
    return buffer.getvalue()
