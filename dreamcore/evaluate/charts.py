"""The pictures of an evaluation: validation grid, eval loss per timestep, trends over steps, training loss,
and for the subject-fidelity protocol its metrics over steps and the best and worst prompts."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from dreamcore.drawing.grids import image_grid
from dreamcore.evaluate.clip_score import summarise
from dreamcore.evaluate.plots import line_plot
from dreamcore.evaluate.subject_fidelity import METRICS

if TYPE_CHECKING:
    from PIL import Image

    from dreamcore.evaluate.evaluation import Evaluation
    from dreamcore.evaluate.subject_fidelity import SubjectScores
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


def subject_trend_plot(evaluations: Sequence[Evaluation]) -> Image.Image | None:
    """DINO, CLIP-I, CLIP-T / 100, PRES and DIV (means over prompts) against training step (base: step 0)."""
    scored = sorted((e for e in evaluations if e.subject is not None), key=lambda e: e.step or 0)
    series = {}
    for metric in METRICS:
        label, scale = ("clip_t / 100", 0.01) if metric == "clip_t" else (metric, 1.0)
        points = [(e.step or 0, value * scale) for e in scored if (value := e.subject.summary()[metric]) is not None]
        if points:
            series[label] = points
    if not series:
        return None
    return line_plot(series, "Subject fidelity (DreamBooth protocol)", "training step", "mean over prompts")


def prompt_extremes_grid(scores: SubjectScores, seeds: Sequence[int], load: Callable[[int, int], Image.Image | None],
                         count: int = 3, metric: str = "dino") -> tuple[Image.Image, list[str]] | None:
    """Rows: the `count` best then the `count` worst prompts by `metric`; columns: the seeds.

    `load(prompt index, seed)` gives a stored image (None: missing). Returns the grid and one caption
    line per row (the row labels are too narrow for whole prompts).
    """
    ranked = scores.ranked_prompts(metric)
    if not ranked or not seeds:
        return None
    best = ranked[:count]
    worst = [i for i in ranked[::-1][:count] if i not in best][::-1]
    rows, captions = [], []
    for kind, indices in (("best", best), ("worst", worst)):
        for index in indices:
            value = getattr(scores.prompts[index], metric)
            label = f"{kind} p{index} {value:.3f}"
            rows.append((label, [load(index, seed) for seed in seeds]))
            captions.append(f"{label}: {scores.prompts[index].prompt}")
    return image_grid(rows, [f"seed {seed}" for seed in seeds]), captions


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
