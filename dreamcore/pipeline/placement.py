"""Where a training runs: in this process, in launched processes (num_processes / num_machines > 1), or on a
Ray cluster (ray_address). The train task and `dreamcore run --stage train` both place a training here.

Its own module so that launched and ray_training (which run train_on_caches in their processes) and the choice
between them import in one direction only.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from dreamcore.cache.stages import run_cache
from dreamcore.config import RunConfig
from dreamcore.pipeline.launched import is_launched, run_launched
from dreamcore.pipeline.ray_training import run_on_ray
from dreamcore.pipeline.training import train_on_caches
from dreamcore.storage import ArtifactStore, StageResult, committed_result
from dreamcore.train.plan import TRAIN_STAGE, CacheResults, TrainPlan, plan_training_on_caches


def train_placed(plan: TrainPlan, store: ArtifactStore, *, on_step: Callable[[dict[str, Any]], None] | None = None,
                 on_line: Callable[[str], None] | None = None) -> StageResult:
    """Train the plan where its config says: on the Ray cluster, in launched processes (their output lines to
    `on_line`), or in this process. Returns the committed result."""
    if plan.training.ray_address:  # Ray Train places the processes; this waits for the commit
        return run_on_ray(plan, store.root_url)
    if is_launched(plan.training):  # several processes or machines, not already under torchrun
        return run_launched(plan, store.root_url, on_step=on_step, on_line=on_line)
    return train_on_caches(plan, store, on_step=on_step)


def run_train(config: RunConfig, store: ArtifactStore) -> dict:
    """`dreamcore run CONFIG --stage train`: train from the committed caches (the cache stage returns them
    without work, or builds what is missing), placed as the train task places it."""
    plan = plan_training_on_caches(config, CacheResults.model_validate(run_cache(config, store)))
    done = committed_result(store, TRAIN_STAGE, plan.key)
    result = done if done is not None else train_placed(
        plan, store, on_line=lambda line: print(line, file=sys.stderr, flush=True))
    return {"train": result.model_dump() | {"trained": done is None}}
