"""The pictures of an evaluation: validation grid, eval loss per timestep, trends over steps, training loss."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from dreamcore.drawing.grids import image_grid
from dreamcore.evaluate.plots import line_plot

if TYPE_CHECKING:
    from PIL import Image

    from dreamcore.evaluate.evaluation import Evaluation
    from dreamcore.evaluate.validation import ValidationPlan


def validation_grid(evaluations: Sequence[Evaluation], plan: ValidationPlan) -> Image.Image | None:
    """Rows: the evaluations that drew images (base first); columns: the plan's (prompt, seed) cells."""
    rows = []
    for evaluation in evaluations:
        if not evaluation.images:
            continue
        by_cell = {(i.prompt_index, i.seed): i.image for i in evaluation.images}
        rows.append((_row_label(evaluation), [by_cell.get(cell) for cell in plan.cells]))
    if not rows:
        return None
    return image_grid(rows, [plan.column_label(p, seed) for p, seed in plan.cells])


def eval_loss_plot(evaluations: Sequence[Evaluation]) -> Image.Image | None:
    """Eval loss against timestep, one line per evaluation."""
    series = {_row_label(e): sorted(e.eval_loss.per_timestep.items()) for e in evaluations if e.eval_loss}
    if not series:
        return None
    return line_plot(series, "Eval loss per timestep (fixed noise)", "timestep", "MSE")


def trend_plot(evaluations: Sequence[Evaluation], title: str = "Trend over training steps") -> Image.Image | None:
    """Mean eval loss and mean CLIP score against training step (each normalised to its first value)."""
    from dreamcore.evaluate.clip_score import summarise

    stepped = sorted((e for e in evaluations if e.step is not None), key=lambda e: e.step)
    loss = [(e.step, e.eval_loss.mean) for e in stepped if e.eval_loss]
    clip = [(e.step, summarise(e.clip_scores)["mean"]) for e in stepped if e.clip_scores]
    series = {}
    if loss:
        series["eval loss / first"] = [(s, v / loss[0][1]) for s, v in loss] if loss[0][1] else loss
    if clip:
        series["CLIP mean / first"] = [(s, v / clip[0][1]) for s, v in clip] if clip[0][1] else clip
    if not series:
        return None
    return line_plot(series, title, "training step", "relative to first")


def training_loss_plot(history: Sequence[dict]) -> Image.Image | None:
    """Training loss (and subject / regularisation parts) against step, from the train report's history."""
    series = {}
    for key in ("loss", "subject_loss", "regularisation_loss"):
        points = [(e["step"], e[key]) for e in history if e.get(key) is not None]
        if points:
            series[key] = points
    if not series:
        return None
    return line_plot(series, "Training loss", "step", "loss")


def _row_label(evaluation: Evaluation) -> str:
    return evaluation.name if evaluation.step in (None, 0) or evaluation.name.endswith(str(evaluation.step)) \
        else f"{evaluation.name} ({evaluation.step})"
