"""Flow: ingest every image dataset of a run (also the first step of the dreambooth flow)."""

from __future__ import annotations

from collections.abc import MutableMapping

from prefect import flow

from dreamcore.config import RunConfig
from dreamcore.data.ingest import IngestPlan, planned_once
from dreamcore.storage import StageResult
from tasks.ingest import ingest
from tasks.results import result_storage_for


def ingest_tasks(config: RunConfig, plans: MutableMapping[str, IngestPlan] | None = None) -> dict[str, StageResult]:
    """The ingest stage's tasks, to call inside any flow (this one, or the dreambooth flow). `plans`: the run's
    ingest plans by dataset id so far (the masks step's), reused and added to, so each is keyed once a run."""
    plans = {} if plans is None else plans
    root = config.training.resolved_storage_root
    ingest_task = ingest.with_options(result_storage=result_storage_for(root))
    return {spec.id: ingest_task(planned_once(spec, plans), root) for spec in config.image_datasets}


@flow(name="ingest", log_prints=True)
def ingest_flow(config: RunConfig) -> dict[str, StageResult]:
    """Validate every image dataset and write its manifest; returns results by dataset id."""
    return ingest_tasks(config)
