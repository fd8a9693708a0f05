"""Flow: the whole Dreambooth pipeline. Stages join here as they land."""

from __future__ import annotations

from prefect import flow

from dreamcore.config import RunConfig
from flows.ingest import ingest_flow


@flow(name="dreambooth", log_prints=True)
def dreambooth(config: RunConfig) -> dict:
    """Run every stage in order; each one skips work it has already committed."""
    ingested = ingest_flow(config)
    return {"ingest": {dataset_id: result.model_dump() for dataset_id, result in ingested.items()}}
