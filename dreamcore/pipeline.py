"""Run single stages in-process, without Prefect: the local-debugging path of `dreamcore run --stage`.

Each runner reads its upstream results from storage (their committed markers) and returns the
stage results as plain dicts.
"""

from __future__ import annotations

from collections.abc import Callable

from dreamcore.cache.stages import run_cache
from dreamcore.config import RunConfig
from dreamcore.data.ingest import ingest_dataset, scan_dataset
from dreamcore.evaluate.stage import run_evaluate
from dreamcore.masks.runner import run_masks
from dreamcore.refine.stage import run_refine
from dreamcore.regularise.runner import run_class_images
from dreamcore.storage import ArtifactStore
from dreamcore.train.runner import run_train


def run_ingest(config: RunConfig, store: ArtifactStore) -> dict[str, dict]:
    """Ingest every image dataset; returns StageResults (as dicts) by dataset id."""
    results = {}
    for spec in config.image_datasets:
        outcome = ingest_dataset(store, scan_dataset(spec))
        results[spec.id] = outcome.result.model_dump() | {"decoded": outcome.decoded}
    return results


STAGE_RUNNERS: dict[str, Callable[[RunConfig, ArtifactStore], dict]] = {
    "ingest": run_ingest,
    "cache": run_cache,
    "masks": run_masks,
    "class_images": run_class_images,
    "train": run_train,
    "evaluate": run_evaluate,
    "refine": run_refine,
}


def run_stage_locally(config: RunConfig, stage: str) -> dict:
    """Run one named stage in this process against the config's storage root."""
    if stage not in STAGE_RUNNERS:
        raise ValueError(f"unknown stage {stage!r}; stages: {', '.join(STAGE_RUNNERS)}")
    store = ArtifactStore(config.training.resolved_storage_root)
    return STAGE_RUNNERS[stage](config, store)
