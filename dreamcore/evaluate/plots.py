"""Line plots drawn with matplotlib: loss curves, eval loss per timestep, score trends.

Figures are built from `matplotlib.figure.Figure` on their own Agg canvas, never through pyplot:
no global backend switch and no figure registry, so a notebook or another library that uses
pyplot in the same process is left alone.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from PIL import Image

# matplotlib's tab10 as RGB bytes: series keep the same colour in every chart of a report.
PALETTE = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
           (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)]
_DPI = 100
_LEGEND_CHARACTERS = 24
_MOST_MARKED_POINTS = 60  # past this, dots along a long loss history only blur the line


def line_plot(series: Mapping[str, Sequence[tuple[float, float]]], title: str, x_label: str, y_label: str,
              size: tuple[int, int] = (640, 360)) -> Image.Image:
    """One line (point markers unless long) per named series of (x, y) points, as an RGB image of `size` pixels."""
    return figure_image(line_figure(series, title, x_label, y_label, size))


def line_figure(series: Mapping[str, Sequence[tuple[float, float]]], title: str, x_label: str, y_label: str,
                size: tuple[int, int] = (640, 360)) -> Figure:
    """The matplotlib figure behind `line_plot`, on an Agg canvas (non-finite points are left out)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    finite = {name: sorted((x, y) for x, y in values if _finite(x) and _finite(y)) for name, values in series.items()}
    if not any(finite.values()):
        raise ValueError(f"plot {title!r}: no finite points to draw")
    # Half a pixel of room: Agg truncates the float canvas size, so 3.6 in * 100 dpi must not become 359 px.
    figure = Figure(figsize=((size[0] + 0.5) / _DPI, (size[1] + 0.5) / _DPI), dpi=_DPI, facecolor="white",
                    layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for number, (name, points) in enumerate(finite.items()):
        colour = tuple(channel / 255 for channel in PALETTE[number % len(PALETTE)])
        marker = "o" if len(points) <= _MOST_MARKED_POINTS else None
        axes.plot([x for x, _ in points], [y for _, y in points], color=colour, marker=marker, markersize=4,
                  linewidth=1.5, label=name[:_LEGEND_CHARACTERS])
    if all(float(x).is_integer() for points in finite.values() for x, _ in points):
        # Steps and timesteps are whole numbers: no ticks at 2.5 between them.
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_title(title, fontsize=11, loc="left")
    axes.set_xlabel(x_label, fontsize=9)
    axes.set_ylabel(y_label, fontsize=9)
    axes.tick_params(labelsize=8)
    axes.grid(True, color="#e6e6e6", linewidth=0.8)
    axes.set_axisbelow(True)
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    return figure


def figure_image(figure: Figure) -> Image.Image:
    """Render a figure that has an Agg canvas to an RGB PIL image."""
    from PIL import Image

    canvas = figure.canvas
    canvas.draw()
    width, height = canvas.get_width_height()
    return Image.frombuffer("RGBA", (width, height), canvas.buffer_rgba(), "raw", "RGBA", 0, 1).convert("RGB")


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)
