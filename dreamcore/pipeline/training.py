"""The train stage wired to its upstream caches: what the train task and `dreamcore run --stage train` share.

Lives here, above evaluate, because training takes the in-training validation monitor
(dreamcore.evaluate.monitor) while dreamcore.train itself stays below evaluate.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from dreamcore.config import RunConfig
from dreamcore.storage import ArtifactStore, StageResult
from dreamcore.train.stage import train_stage


def cache_digests(vae_results: Mapping[str, StageResult], text_result: StageResult) -> dict[str, str]:
    """The upstream digests of the train stage key: every VAE cache (by dataset id) and the text cache."""
    digests = {f"vae_cache/{dataset_id}": result.digest for dataset_id, result in sorted(vae_results.items())}
    return digests | {"text_cache": text_result.digest}


def train_on_caches(
    config: RunConfig,
    store: ArtifactStore,
    vae_results: Mapping[str, StageResult],
    text_result: StageResult,
    *,
    on_step: Callable[[dict[str, Any]], None] | None = None,
    show_progress: bool = True,
) -> StageResult:
    """Train (or resume, or return the committed result) on the committed caches, with the in-training monitor.

    Under torchrun each process reads its own share of the batches; under Prefect there is one process,
    unless num_processes launches several (dreamcore.pipeline.launched).
    """
    from dreamcore.cache.batches import open_batch_source
    from dreamcore.evaluate.monitor import training_monitor_factory
    from dreamcore.train.trainer import make_accelerator

    accelerator = make_accelerator(config.training)
    batches = open_batch_source(store, config, vae_results, text_result, process_index=accelerator.process_index,
                                num_processes=accelerator.num_processes)
    return train_stage(config, store, batches, cache_digests(vae_results, text_result), accelerator=accelerator,
                       on_step=on_step, show_progress=show_progress,
                       make_monitor=training_monitor_factory(config, store))


def run_train(config: RunConfig, store: ArtifactStore) -> dict:
    """`dreamcore run CONFIG --stage train`: train from the committed caches (the cache stage returns them
    without work, or builds what is missing)."""
    from dreamcore.cache.stages import run_cache

    caches = run_cache(config, store)
    vae = {dataset_id: StageResult.model_validate(r) for dataset_id, r in caches["vae_cache"].items()}
    text = StageResult.model_validate(caches["text_cache"])
    return {"train": train_on_caches(config, store, vae, text).model_dump()}
