"""Run single stages in-process, without Prefect: the local-debugging path of `dreamcore run --stage`.

Each runner reads its upstream results from storage (their committed markers) and returns the
stage results as plain dicts.
"""

from __future__ import annotations

from dreamcore.config import RunConfig
from dreamcore.pipeline.generated import committed_generation, with_generated_datasets
from dreamcore.pipeline.stages import find_stage
from dreamcore.storage import ArtifactStore


def run_stage_locally(config: RunConfig, stage: str) -> dict:
    """Run one named stage in this process against the config's storage root."""
    declared = find_stage(stage)
    store = ArtifactStore(config.training.resolved_storage_root)
    if declared.sees_generated_datasets:
        config = with_generated_datasets(config, committed_generation(config, store))
    return declared.run_locally(config, store)
