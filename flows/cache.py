"""Flow: the cache stages of a run: VAE latents per image dataset (masks ride along), then text embeddings."""

from __future__ import annotations

from prefect import flow

from dreamcore.cache.stages import text_cache_plan, vae_cache_plans
from dreamcore.config import RunConfig
from dreamcore.storage import StageResult
from tasks.cache import text_cache, vae_cache
from tasks.results import result_storage_for


def cache_tasks(config: RunConfig, ingested: dict[str, StageResult]) -> dict:
    """The cache stage's tasks, to call inside any flow (this one, or the dreambooth flow)."""
    root = config.training.resolved_storage_root
    storage = result_storage_for(root)
    vae_task = vae_cache.with_options(result_storage=storage)
    text_task = text_cache.with_options(result_storage=storage)
    # Each cache is planned (keyed) here, once; the tasks' cache keys and the stages read the plans.
    latents = {dataset_id: vae_task(plan) for dataset_id, plan in vae_cache_plans(config, ingested).items()}
    embeddings = text_task(text_cache_plan(config, ingested), root)
    return {"vae_cache": latents, "text_cache": embeddings}


@flow(name="cache", log_prints=True)
def cache_flow(config: RunConfig, ingested: dict[str, StageResult]) -> dict:
    """Cache every image dataset's latents and every caption's embeddings from the ingest results by dataset id.

    Returns {"vae_cache": {dataset id: StageResult}, "text_cache": StageResult}.
    """
    return cache_tasks(config, ingested)
