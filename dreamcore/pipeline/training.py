"""The train stage wired to its upstream caches: what the train task and `dreamcore run --stage train` share.

Lives here, above evaluate, because training takes the in-training validation monitor
(dreamcore.evaluate.monitor) while dreamcore.train itself stays below evaluate.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dreamcore.cache.batches import open_batch_source
from dreamcore.evaluate.monitor import training_monitor_factory
from dreamcore.storage import ArtifactStore, StageResult, committed_result
from dreamcore.train.plan import TrainPlan, cache_digests, plan_training_on_caches
from dreamcore.train.stage import TRAIN_STAGE, train_stage

__all__ = ["cache_digests", "plan_training_on_caches", "train_on_caches", "training_reads"]


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
