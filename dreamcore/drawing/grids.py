"""Validation grids: one row per weights (base, checkpoints, final), one column per (prompt, seed).

Layout: a header strip (HEADER_PX high) with the column labels, a label strip (LABEL_PX wide) on
the left with the row labels, then cells of the largest image size, images pasted at each cell's
top-left. Missing images leave a grey cell.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL import Image

LABEL_PX = 120
HEADER_PX = 24
BACKGROUND = (255, 255, 255)
EMPTY_CELL = (200, 200, 200)


def grid_cell_origin(row: int, column: int, cell: tuple[int, int]) -> tuple[int, int]:
    """Top-left pixel (x, y) of a cell in a grid whose cells are `cell` = (width, height)."""
    return LABEL_PX + column * cell[0], HEADER_PX + row * cell[1]


def image_grid(rows: Sequence[tuple[str, Sequence[Image.Image | None]]], column_labels: Sequence[str]) -> Image.Image:
    """A labelled grid of images; every row has one entry (an image or None) per column label."""
    from PIL import Image, ImageDraw

    if not rows or not column_labels:
        raise ValueError("a grid needs at least one row and one column")
    for label, images in rows:
        if len(images) != len(column_labels):
            raise ValueError(f"grid row {label!r} has {len(images)} images for {len(column_labels)} columns")
    present = [image for _, images in rows for image in images if image is not None]
    cell = (max((i.width for i in present), default=64), max((i.height for i in present), default=64))
    size = (LABEL_PX + cell[0] * len(column_labels), HEADER_PX + cell[1] * len(rows))
    grid = Image.new("RGB", size, BACKGROUND)
    draw = ImageDraw.Draw(grid)
    for column, text in enumerate(column_labels):
        x, _ = grid_cell_origin(0, column, cell)
        draw.text((x + 2, 4), _fit(draw, text, cell[0] - 4), fill=(0, 0, 0))
    for row, (label, images) in enumerate(rows):
        _, y = grid_cell_origin(row, 0, cell)
        draw.text((4, y + 4), _fit(draw, label, LABEL_PX - 8), fill=(0, 0, 0))
        for column, image in enumerate(images):
            origin = grid_cell_origin(row, column, cell)
            if image is None:
                draw.rectangle([origin, (origin[0] + cell[0] - 1, origin[1] + cell[1] - 1)], fill=EMPTY_CELL)
            else:
                grid.paste(image.convert("RGB"), origin)
    return grid


def _fit(draw, text: str, width: int) -> str:
    """`text` cut (with an ellipsis) to fit `width` pixels in the default font."""
    if draw.textlength(text) <= width:
        return text
    while text and draw.textlength(text + "...") > width:
        text = text[:-1]
    return text + "..."
