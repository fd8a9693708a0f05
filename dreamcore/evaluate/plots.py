"""Line plots drawn with PIL (no matplotlib): loss curves, eval loss per timestep, score trends."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL import Image

PALETTE = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
           (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)]
_MARGIN = {"left": 70, "right": 150, "top": 30, "bottom": 40}


def line_plot(series: Mapping[str, Sequence[tuple[float, float]]], title: str, x_label: str, y_label: str,
              size: tuple[int, int] = (720, 400)) -> Image.Image:
    """One line (with point markers) per named series of (x, y) points, axes with 5 ticks, a legend."""
    from PIL import Image, ImageDraw

    points = [(x, y) for values in series.values() for x, y in values if _finite(x) and _finite(y)]
    if not points:
        raise ValueError(f"plot {title!r}: no finite points to draw")
    x_range = _padded(min(p[0] for p in points), max(p[0] for p in points))
    y_range = _padded(min(p[1] for p in points), max(p[1] for p in points))
    image = Image.new("RGB", size, (255, 255, 255))
    draw = ImageDraw.Draw(image)
    box = (_MARGIN["left"], _MARGIN["top"], size[0] - _MARGIN["right"], size[1] - _MARGIN["bottom"])

    def to_pixel(x: float, y: float) -> tuple[float, float]:
        px = box[0] + (x - x_range[0]) / (x_range[1] - x_range[0]) * (box[2] - box[0])
        py = box[3] - (y - y_range[0]) / (y_range[1] - y_range[0]) * (box[3] - box[1])
        return px, py

    _axes(draw, box, x_range, y_range, title, x_label, y_label)
    for number, (name, values) in enumerate(series.items()):
        colour = PALETTE[number % len(PALETTE)]
        pixels = [to_pixel(x, y) for x, y in sorted(values) if _finite(x) and _finite(y)]
        if len(pixels) > 1:
            draw.line(pixels, fill=colour, width=2)
        for px, py in pixels:
            draw.ellipse([px - 2.5, py - 2.5, px + 2.5, py + 2.5], fill=colour)
        legend_y = box[1] + 14 * number
        draw.line([(box[2] + 10, legend_y + 6), (box[2] + 28, legend_y + 6)], fill=colour, width=3)
        draw.text((box[2] + 32, legend_y), name[:18], fill=(0, 0, 0))
    return image


def _axes(draw, box, x_range, y_range, title: str, x_label: str, y_label: str) -> None:
    draw.rectangle(box, outline=(0, 0, 0))
    for i in range(5):
        fraction = i / 4
        x_value = x_range[0] + fraction * (x_range[1] - x_range[0])
        y_value = y_range[0] + fraction * (y_range[1] - y_range[0])
        px = box[0] + fraction * (box[2] - box[0])
        py = box[3] - fraction * (box[3] - box[1])
        draw.line([(px, box[3]), (px, box[3] + 4)], fill=(0, 0, 0))
        draw.text((px - 12, box[3] + 6), _tick(x_value), fill=(0, 0, 0))
        draw.line([(box[0] - 4, py), (box[0], py)], fill=(0, 0, 0))
        draw.line([(box[0], py), (box[2], py)], fill=(235, 235, 235))
        draw.text((4, py - 6), _tick(y_value), fill=(0, 0, 0))
    draw.text((box[0], 8), title, fill=(0, 0, 0))
    draw.text(((box[0] + box[2]) / 2 - 20, box[3] + 22), x_label, fill=(60, 60, 60))
    draw.text((box[2] + 10, box[3] - 12), f"y: {y_label}"[:22], fill=(60, 60, 60))


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def _padded(low: float, high: float) -> tuple[float, float]:
    """A range that is never empty, with 5 % room at both ends."""
    if high == low:
        pad = abs(low) * 0.05 or 1.0
        return low - pad, high + pad
    pad = (high - low) * 0.05
    return low - pad, high + pad


def _tick(value: float) -> str:
    if value != 0 and (abs(value) < 1e-2 or abs(value) >= 1e5):
        return f"{value:.1e}"
    return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
