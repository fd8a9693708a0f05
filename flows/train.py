"""Flow: train on cached batches and export the weights (also a step of the dreambooth flow)."""

from __future__ import annotations

from prefect import flow

from dreamcore.config import RunConfig
from dreamcore.pipeline import CacheResults, plan_training_on_caches
from dreamcore.storage import StageResult
from tasks.results import result_storage_for
from tasks.train import train


def train_tasks(config: RunConfig, caches: dict | CacheResults) -> StageResult:
    """The train stage's tasks, to call inside any flow (this one, or the dreambooth flow), on the cache
    stage's results: {"vae_cache": {dataset id: StageResult}, "text_cache": StageResult}. The stage is planned
    (and keyed) here, once; the task's cache key and the training read the plan."""
    root = config.training.resolved_storage_root
    plan = plan_training_on_caches(config, CacheResults.model_validate(caches))
    return train.with_options(result_storage=result_storage_for(root))(plan, root)


@flow(name="train", log_prints=True)
def train_flow(config: RunConfig, vae_results: dict[str, StageResult], text_result: StageResult) -> StageResult:
    """Train (or resume, or skip when done) on the run's committed caches."""
    return train_tasks(config, {"vae_cache": vae_results, "text_cache": text_result})
