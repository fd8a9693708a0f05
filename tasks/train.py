"""Prefect task for the train stage: progress artifact while training, loss table when done."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from prefect import get_run_logger
from prefect.artifacts import create_progress_artifact, create_table_artifact, update_progress_artifact
from prefect.concurrency.sync import concurrency

from dreamcore.pipeline import train_placed
from dreamcore.storage import ArtifactStore, StageResult
from dreamcore.train.adapters import AdapterError
from dreamcore.train.base import QuantisationUnavailable
from dreamcore.train.plan import TRAIN_STAGE, TrainPlan
from tasks.secrets import plan_with_secret_blocks_loaded
from tasks.stage_task import stage_task

_LOSS_TABLE_ROWS = 200
# The global concurrency limit `dreamcore serve` creates: one slot per GPU keeps two runs off one GPU.
GPU_SLOT = "dreamcore-gpu"

# Bad config or missing hardware/libraries: a retry would fail the same way. Anything else (a lost
# connection to the store, a killed worker) is retried, resuming from the newest checkpoint.
_NOT_WORTH_RETRYING = (AdapterError, QuantisationUnavailable, ValueError, FileNotFoundError)


@stage_task(TRAIN_STAGE, name="train", task_run_name="train", bad_input=_NOT_WORTH_RETRYING, retries=1,
            retry_delay_seconds=10)
def train(plan: TrainPlan, storage_root: str) -> StageResult:
    """Train the plan on its cached batches (resuming from a checkpoint if one exists) and export the weights."""
    logger = get_run_logger()
    store = ArtifactStore(storage_root)
    training = plan.training
    total = max(training.max_train_steps, 1)
    progress_id = create_progress_artifact(progress=0.0, key="train-progress",
                                           description=f"Training {training.model_type} for {total} steps")
    every = max(1, total // 100)

    def on_step(entry: dict[str, Any]) -> None:
        if entry["step"] % every == 0 or entry["step"] == total:
            update_progress_artifact(progress_id, 100.0 * entry["step"] / total)

    plan = plan_with_secret_blocks_loaded(plan)  # in memory: the stored parameter keeps the block names
    with _gpu_slot(logger):
        # launched processes' output goes to this task's log, line by line
        result = train_placed(plan, store, on_step=on_step, on_line=lambda line: logger.info("%s", line))
    update_progress_artifact(progress_id, 100.0)
    report = store.read_json(f"{TRAIN_STAGE}/{result.key}/report.json")
    logger.info("trained %s (%d modules) for %d steps, final loss %.5f; weights in %s", report["adapter"],
                report["wrapped_modules"], report["steps"], report["final_loss"] or float("nan"), result.output_uri)
    create_table_artifact(key="train-loss", table=loss_table(report["history"]),
                          description=f"Training loss of `{result.key}` ({report['steps']} steps, subject and "
                          f"regularisation losses separately). Weights: {result.output_uri}")
    return result


@contextmanager
def _gpu_slot(logger) -> Iterator[None]:
    """One slot of the dreamcore-gpu limit while training, when the Prefect server has that limit (`dreamcore
    serve` creates it). Without it (a temporary server, a server nobody ran `serve` on) training proceeds, and
    this says so once at INFO rather than Prefect warning of a missing limit on every run."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    try:
        with get_client(sync_client=True) as client:
            client.read_global_concurrency_limit_by_name(GPU_SLOT)
    except ObjectNotFound:
        logger.info("no %r concurrency limit on this Prefect server: training takes no GPU slot "
                    "(`dreamcore serve --gpus N` creates one with N slots)", GPU_SLOT)
        yield
        return
    with concurrency(GPU_SLOT, occupy=1, strict=False):  # strict=False: a limit deleted meanwhile is no error
        # Both lines mark the slot's span in the run's log (a fleet's trainings can be lined up by them).
        logger.info("this training holds a %s slot", GPU_SLOT)
        try:
            yield
        finally:
            logger.info("this training released its %s slot", GPU_SLOT)


def loss_table(history: list[dict[str, Any]], rows: int = _LOSS_TABLE_ROWS) -> list[dict[str, Any]]:
    """At most `rows` evenly spaced entries of the loss history (always the last one)."""
    if len(history) > rows:
        stride = len(history) / rows
        picked = {int(i * stride) for i in range(rows)} | {len(history) - 1}
        history = [history[i] for i in sorted(picked)]
    keys = ("step", "loss", "subject_loss", "regularisation_loss", "lr", "rollout_probability")
    return [{key: entry.get(key) for key in keys} for entry in history]
