"""Prefect task for the ingest stage."""

from __future__ import annotations

from prefect import get_run_logger
from prefect.artifacts import create_table_artifact

from dreamcore.data.ingest import (
    DatasetChangedError,
    EmptyDatasetError,
    IngestPlan,
    ingest_planned,
    read_manifest,
)
from dreamcore.storage import ArtifactStore, StageResult
from tasks.artifacts import artifact_key
from tasks.stage_task import stage_task

_NOT_WORTH_RETRYING = (EmptyDatasetError, DatasetChangedError, FileNotFoundError, ValueError)


@stage_task("ingest", name="ingest", task_run_name="ingest-{plan.spec.id}", bad_input=_NOT_WORTH_RETRYING,
            retries=2, retry_delay_seconds=5)
def ingest(plan: IngestPlan, storage_root: str) -> StageResult:
    """Ingest one planned dataset: validate every image and write its manifest."""
    logger = get_run_logger()
    store = ArtifactStore(storage_root)
    spec = plan.spec
    outcome = ingest_planned(store, plan)
    result = outcome.result
    logger.info(
        "dataset %r: %d accepted, %d rejected, %d decoded in this run",
        spec.id,
        result.counts["accepted"],
        result.counts["rejected"],
        outcome.decoded,
    )
    rows = read_manifest(store, result)
    create_table_artifact(
        key=artifact_key("ingest", spec.id),
        table=[{k: r[k] for k in ("path", "status", "reason", "width", "height")} for r in rows],
        description=f"Ingest of dataset `{spec.id}`: {result.counts['accepted']} accepted, "
        f"{result.counts['rejected']} rejected. Manifest: {result.output_uri}",
    )
    return result
