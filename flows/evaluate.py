"""Flow: evaluate a committed training (base vs checkpoints vs final) and write the run report."""

from __future__ import annotations

from prefect import flow

from dreamcore.config import RunConfig
from dreamcore.pipeline import plan_evaluating
from dreamcore.storage import StageResult
from tasks.evaluate import evaluate
from tasks.results import result_storage_for


def evaluate_tasks(config: RunConfig, train_result: StageResult, caches: dict | None = None) -> StageResult:
    """The evaluate stage's tasks, to call inside any flow (this one, or the dreambooth flow). The stage is
    planned here, once: its eval rows from the cache stage's results when given, else the committed caches."""
    root = config.training.resolved_storage_root
    plan = plan_evaluating(config, train_result, caches)
    return evaluate.with_options(result_storage=result_storage_for(root))(plan, root)


@flow(name="evaluate", log_prints=True)
def evaluate_flow(config: RunConfig, train_result: StageResult) -> StageResult:
    """Validation images, CLIP scores and eval loss of every weights of `train_result`, plus the report."""
    return evaluate_tasks(config, train_result)
