"""Prefect task for the ingest stage."""

from __future__ import annotations

from prefect import get_run_logger
from prefect.artifacts import create_table_artifact

from dreamcore.config import DatasetSpec
from dreamcore.data.ingest import (
    EmptyDatasetError,
    ingest_dataset,
    ingest_key,
    read_manifest,
    scan_dataset,
)
from dreamcore.storage import ArtifactStore, StageResult
from tasks.artifacts import artifact_key
from tasks.stage_task import stage_task

_NOT_WORTH_RETRYING = (EmptyDatasetError, FileNotFoundError, ValueError)


@stage_task("ingest", key=lambda parameters: ingest_key(scan_dataset(parameters["spec"])), name="ingest",
            task_run_name="ingest-{spec.id}", bad_input=_NOT_WORTH_RETRYING, retries=2, retry_delay_seconds=5)
def ingest(spec: DatasetSpec, storage_root: str) -> StageResult:
    """Ingest one dataset: validate every image and write its manifest."""
    logger = get_run_logger()
    store = ArtifactStore(storage_root)
    outcome = ingest_dataset(store, scan_dataset(spec))
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
