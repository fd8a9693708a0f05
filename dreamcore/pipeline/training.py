"""The train stage wired to its upstream caches: what the train task and `dreamcore run --stage train` share.

Lives here, above evaluate, because training takes the in-training validation monitor
(dreamcore.evaluate.monitor) while dreamcore.train itself stays below evaluate.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from dreamcore.config import RunConfig
from dreamcore.storage import ArtifactStore, StageResult, committed_result
from dreamcore.train.plan import CacheResults, TrainPlan, cache_digests, plan_training_on_caches
from dreamcore.train.stage import TRAIN_STAGE, train_stage

__all__ = ["cache_digests", "plan_training_on_caches", "run_train", "train_on_caches"]


def train_on_caches(
    plan: TrainPlan,
    store: ArtifactStore,
    *,
    on_step: Callable[[dict[str, Any]], None] | None = None,
    show_progress: bool = True,
) -> StageResult:
    """Train (or resume, or return the committed result) the plan on its committed caches, with the in-training
    monitor.

    Under torchrun each process reads its own share of the batches; under Prefect there is one process,
    unless num_processes launches several (dreamcore.pipeline.launched).
    A committed training is returned before the accelerator and the batches are opened (torch, accelerate
    and the cache tables are seconds and hundreds of MB that a rerun does not need).
    """
    done = committed_result(store, TRAIN_STAGE, plan.key)
    if done is not None:
        return done
    if plan.caches is None:
        raise ValueError(f"train plan {plan.key} has no cache results to train on")
    from dreamcore.cache.batches import open_batch_source
    from dreamcore.evaluate.monitor import training_monitor_factory
    from dreamcore.train.trainer import make_accelerator

    accelerator = make_accelerator(plan.training)
    config = plan.run_config
    batches = open_batch_source(store, config, plan.caches.vae_cache, plan.caches.text_cache,
                                process_index=accelerator.process_index, num_processes=accelerator.num_processes)
    return train_stage(plan, store, batches, accelerator=accelerator, on_step=on_step, show_progress=show_progress,
                       make_monitor=training_monitor_factory(plan, store), reads=training_reads(plan))


def training_reads(plan: TrainPlan) -> list[str]:
    """What a training reads from storage, for gc to keep while it runs or may resume: the cache stages
    (whose own _INPUTS.json name their ingests, whose indexes name the shards) and init_weights."""
    reads = [r.output_uri for r in plan.caches.vae_cache.values()] + [plan.caches.text_cache.output_uri]
    return reads + ([plan.training.init_weights] if plan.training.init_weights else [])


def run_train(config: RunConfig, store: ArtifactStore) -> dict:
    """`dreamcore run CONFIG --stage train`: train from the committed caches (the cache stage returns them
    without work, or builds what is missing)."""
    from dreamcore.cache.stages import run_cache

    plan = plan_training_on_caches(config, CacheResults.model_validate(run_cache(config, store)))
    done = committed_result(store, TRAIN_STAGE, plan.key)
    if done is not None:
        result = done
    elif plan.training.ray_address:  # on the Ray cluster, as the train task does
        from dreamcore.pipeline.ray_training import run_on_ray

        result = run_on_ray(plan, store.root_url)
    else:
        from dreamcore.pipeline.launched import is_launched, run_launched

        # several processes or machines (not already under torchrun): launched here, as the train task launches
        result = run_launched(plan, store.root_url, on_line=lambda line: print(line, file=sys.stderr, flush=True)) \
            if is_launched(plan.training) else train_on_caches(plan, store)
    return {"train": result.model_dump() | {"trained": done is None}}
