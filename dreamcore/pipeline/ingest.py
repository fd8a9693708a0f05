"""`dreamcore run CONFIG --stage ingest`: ingest every image dataset in this process."""

from __future__ import annotations

from dreamcore.config import RunConfig
from dreamcore.data.ingest import ingest_dataset, scan_dataset
from dreamcore.storage import ArtifactStore


def run_ingest(config: RunConfig, store: ArtifactStore) -> dict[str, dict]:
    """Ingest every image dataset; returns StageResults (as dicts) by dataset id."""
    results = {}
    for spec in config.image_datasets:
        outcome = ingest_dataset(store, scan_dataset(spec))
        results[spec.id] = outcome.result.model_dump() | {"decoded": outcome.decoded}
    return results
