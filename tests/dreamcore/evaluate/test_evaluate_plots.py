"""Line plots through matplotlib: colours, size, readable ticks, no pyplot state."""

from __future__ import annotations

import pytest

from dreamcore.evaluate.plots import PALETTE, line_figure, line_plot


def test_line_plot_draws_each_series_in_its_colour() -> None:
    plot = line_plot({"base": [(0, 1.0), (10, 2.0)], "final": [(0, 3.0), (10, 0.5)]}, "t", "x", "y", size=(400, 300))
    assert plot.size == (400, 300) and plot.mode == "RGB"
    colours = {colour for _, colour in plot.getcolors(400 * 300)}
    assert PALETTE[0] in colours and PALETTE[1] in colours
    with pytest.raises(ValueError, match="no finite points"):
        line_plot({"a": [(0, float("nan"))]}, "t", "x", "y")


def test_line_plot_is_small_and_the_same_every_time() -> None:
    series = {"eval loss / first": [(0, 1.0), (2, 0.98), (4, float("inf")), (6, 0.97)]}
    first, second = line_plot(series, "trend", "step", "ratio"), line_plot(series, "trend", "step", "ratio")
    assert first.size == (640, 360)
    assert first.tobytes() == second.tobytes()


def test_y_ticks_tell_close_values_apart() -> None:
    """The hand-drawn chart read 1, 1, 1, 0.999 for a CLIP trend; every tick label must differ."""
    figure = line_figure({"CLIP mean / first": [(0, 1.0), (1, 0.9995), (2, 0.999)]}, "trend", "step", "ratio")
    figure.canvas.draw()
    axes = figure.axes[0]
    low, high = axes.get_ylim()
    labels = [label.get_text() for label in axes.get_yticklabels() if low <= label.get_position()[1] <= high]
    assert len(labels) >= 3 and all(labels)
    assert len(set(labels)) == len(labels), labels


def test_whole_number_steps_get_whole_number_ticks() -> None:
    figure = line_figure({"loss": [(1, 0.3), (2, 0.2), (3, 0.25)]}, "loss", "step", "loss")
    figure.canvas.draw()
    ticks = [tick for tick in figure.axes[0].get_xticks() if 1 <= tick <= 3]
    assert ticks and all(float(tick).is_integer() for tick in ticks)
