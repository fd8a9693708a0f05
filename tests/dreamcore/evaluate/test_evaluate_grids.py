"""Grid layout (rows = weights, columns = prompt x seed)."""

from __future__ import annotations

import pytest
from PIL import Image

from dreamcore.drawing.grids import EMPTY_CELL, HEADER_PX, LABEL_PX, grid_cell_origin, image_grid
from dreamcore.evaluate.charts import validation_grid
from dreamcore.evaluate.evaluation import Evaluation
from dreamcore.evaluate.validation import ValidationImage, ValidationPlan


def solid(colour) -> Image.Image:
    return Image.new("RGB", (32, 24), colour)


def test_grid_puts_each_image_in_its_row_and_column() -> None:
    colours = {(r, c): (40 * r + 10, 50 * c + 20, 7) for r in range(3) for c in range(2)}
    rows = [(f"row {r}", [solid(colours[r, c]) for c in range(2)]) for r in range(3)]
    rows[1][1][1] = None  # a missing image leaves a grey cell
    grid = image_grid(rows, ["a", "b"])
    assert grid.size == (LABEL_PX + 2 * 32, HEADER_PX + 3 * 24)
    for (r, c), colour in colours.items():
        x, y = grid_cell_origin(r, c, (32, 24))
        expected = EMPTY_CELL if (r, c) == (1, 1) else colour
        assert grid.getpixel((x + 16, y + 12)) == expected
        assert grid.getpixel((x, y)) == expected and grid.getpixel((x + 31, y + 23)) == expected


def test_validation_grid_rows_are_weights_and_columns_prompt_seed_cells() -> None:
    plan = ValidationPlan(("p0", "p1"), (3, 4), None, 2, 1.0, (32, 24))
    evaluations = []
    for r, name in enumerate(["base", "step-2", "final"]):
        images = [ValidationImage(p, f"p{p}", seed, solid((r * 60, p * 100, seed))) for p, seed in plan.cells]
        evaluations.append(Evaluation(name, r * 2, images[::-1]))  # any order in, plan order out
    evaluations.append(Evaluation("loss-only", 9))  # no images: no row
    grid = validation_grid(evaluations, plan)
    assert grid.size == (LABEL_PX + 4 * 32, HEADER_PX + 3 * 24)
    for r in range(3):
        for c, (p, seed) in enumerate(plan.cells):
            x, y = grid_cell_origin(r, c, (32, 24))
            assert grid.getpixel((x + 5, y + 5)) == (r * 60, p * 100, seed)


def test_grid_rows_must_match_the_columns() -> None:
    with pytest.raises(ValueError, match="2 columns"):
        image_grid([("r", [solid((0, 0, 0))])], ["a", "b"])
