"""`dreamcore run CONFIG --stage train`: the train stage in this process over the run's caches."""

from __future__ import annotations

from collections.abc import Mapping

from dreamcore.config import RunConfig
from dreamcore.storage import ArtifactStore, StageResult


def cache_digests(vae_results: Mapping[str, StageResult], text_result: StageResult) -> dict[str, str]:
    """The upstream digests of the train stage key: every VAE cache (by dataset id) and the text cache."""
    digests = {f"vae_cache/{dataset_id}": result.digest for dataset_id, result in sorted(vae_results.items())}
    return digests | {"text_cache": text_result.digest}


def run_train(config: RunConfig, store: ArtifactStore) -> dict:
    """Train from the committed caches (the cache stage returns them without work, or builds what is missing)."""
    from dreamcore.cache.batches import open_batch_source
    from dreamcore.cache.stages import run_cache
    from dreamcore.evaluate.monitor import training_monitor_factory
    from dreamcore.train.stage import train_stage
    from dreamcore.train.trainer import make_accelerator

    caches = run_cache(config, store)
    vae = {dataset_id: StageResult.model_validate(r) for dataset_id, r in caches["vae_cache"].items()}
    text = StageResult.model_validate(caches["text_cache"])
    accelerator = make_accelerator(config.training)
    batches = open_batch_source(store, config, vae, text, process_index=accelerator.process_index,
                                num_processes=accelerator.num_processes)
    result = train_stage(config, store, batches, cache_digests(vae, text), accelerator=accelerator,
                         make_monitor=training_monitor_factory(config, store))
    return {"train": result.model_dump()}
