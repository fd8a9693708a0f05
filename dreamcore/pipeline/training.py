"""The train stage wired to its upstream caches: what the train task and `dreamcore run --stage train` share.

Lives here, above evaluate, because training takes the in-training validation monitor
(dreamcore.evaluate.monitor) while dreamcore.train itself stays below evaluate.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from dreamcore.config import RunConfig
from dreamcore.config.fields import differs_from_default
from dreamcore.storage import ArtifactStore, StageResult, committed_result, digest_of
from dreamcore.train.stage import TRAIN_STAGE, train_key, train_stage

# Per-dataset settings read while batches are drawn, so no cache digest holds them: keyed here when a
# dataset sets one away from its default (unset adds nothing, so the keys of runs that use none stay the same).
_DRAWING_FIELDS = ("repeats", "probability", "caption_dropout_probability")


def cache_digests(vae_results: Mapping[str, StageResult], text_result: StageResult,
                  config: RunConfig) -> dict[str, str]:
    """The upstream digests of the train stage key: every VAE cache (by dataset id) and the text cache, plus
    the datasets' own repeats, probability and caption_dropout_probability where set."""
    digests = {f"vae_cache/{dataset_id}": result.digest for dataset_id, result in sorted(vae_results.items())}
    digests |= {"text_cache": text_result.digest}
    for name in _DRAWING_FIELDS:
        own = {d.id: getattr(d, name) for d in config.datasets if differs_from_default(d, name)}
        if own:
            digests[f"datasets/{name}"] = digest_of(dict(sorted(own.items())))
    return digests


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
    A committed training is returned before the accelerator and the batches are opened (torch, accelerate
    and the cache tables are seconds and hundreds of MB that a rerun does not need).
    """
    digests = cache_digests(vae_results, text_result, config)
    done = committed_training(config, store, digests)
    if done is not None:
        return done
    from dreamcore.cache.batches import open_batch_source
    from dreamcore.evaluate.monitor import training_monitor_factory
    from dreamcore.train.trainer import make_accelerator

    accelerator = make_accelerator(config.training)
    batches = open_batch_source(store, config, vae_results, text_result, process_index=accelerator.process_index,
                                num_processes=accelerator.num_processes)
    return train_stage(config, store, batches, digests, accelerator=accelerator,
                       on_step=on_step, show_progress=show_progress,
                       make_monitor=training_monitor_factory(config, store),
                       reads=training_reads(config, vae_results, text_result))


def training_reads(config: RunConfig, vae_results: Mapping[str, StageResult], text_result: StageResult) -> list[str]:
    """What a training reads from storage, for gc to keep while it runs or may resume: the cache stages
    (whose own _INPUTS.json name their ingests, whose indexes name the shards) and init_weights."""
    reads = [r.output_uri for r in vae_results.values()] + [text_result.output_uri]
    return reads + ([config.training.init_weights] if config.training.init_weights else [])


def committed_training(config: RunConfig, store: ArtifactStore, digests: dict[str, str]) -> StageResult | None:
    """The committed train result for this config and these cache digests, or None."""
    return committed_result(store, TRAIN_STAGE, train_key(config.training, digests))


def run_train(config: RunConfig, store: ArtifactStore) -> dict:
    """`dreamcore run CONFIG --stage train`: train from the committed caches (the cache stage returns them
    without work, or builds what is missing)."""
    from dreamcore.cache.stages import run_cache

    caches = run_cache(config, store)
    vae = {dataset_id: StageResult.model_validate(r) for dataset_id, r in caches["vae_cache"].items()}
    text = StageResult.model_validate(caches["text_cache"])
    done = committed_training(config, store, cache_digests(vae, text, config))
    result = done if done is not None else train_on_caches(config, store, vae, text)
    return {"train": result.model_dump() | {"trained": done is None}}
