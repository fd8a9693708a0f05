"""Flow: the trained base draws the validation prompts, the (tuned) SDXL refiner refines them, side by side."""

from __future__ import annotations

from prefect import flow

from dreamcore.config import RunConfig
from dreamcore.refine.stage import plan_refine
from dreamcore.storage import StageResult
from tasks.refine import refine
from tasks.results import result_storage_for


def refine_tasks(config: RunConfig, train_result: StageResult | None = None) -> StageResult:
    """The refine stage's tasks, to call inside any flow (this one, or the dreambooth flow); the stage is
    planned (keyed) here, once."""
    root = config.training.resolved_storage_root
    refine_task = refine.with_options(result_storage=result_storage_for(root))
    return refine_task(plan_refine(config, train_result), root)


@flow(name="refine", log_prints=True)
def refine_flow(config: RunConfig, train_result: StageResult | None = None) -> StageResult:
    """Base/refined image pairs of the validation prompts (train_result None: the stock base)."""
    return refine_tasks(config, train_result)
