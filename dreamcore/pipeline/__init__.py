"""The dreambooth pipeline wired in one place: the stage declaration (stages), the swap-in of
generated datasets (generated), the train stage over its caches (training) and in-process stage
runs for `dreamcore run --stage/--until/--stages` (local).

The top layer of dreamcore: only dreamcore.cli imports it inside the library; tasks/ and flows/ use it.
"""

from __future__ import annotations

from dreamcore.pipeline.generated import committed_generation, with_generated_datasets
from dreamcore.pipeline.ingest import run_ingest
from dreamcore.pipeline.local import run_stage_locally, run_stages_locally
from dreamcore.pipeline.plans import plan_evaluating
from dreamcore.pipeline.preflight import preflight
from dreamcore.pipeline.stages import (
    STAGE_RUNNERS,
    STAGES,
    Stage,
    chosen_stages,
    find_stage,
    stage_names,
    stages_until,
)
from dreamcore.pipeline.placement import run_train, train_placed
from dreamcore.pipeline.training import cache_digests, plan_training_on_caches, train_on_caches
from dreamcore.train.plan import CacheResults, TrainPlan

__all__ = [
    "CacheResults",
    "STAGES",
    "STAGE_RUNNERS",
    "Stage",
    "TrainPlan",
    "cache_digests",
    "chosen_stages",
    "committed_generation",
    "find_stage",
    "plan_evaluating",
    "plan_training_on_caches",
    "preflight",
    "run_ingest",
    "run_stage_locally",
    "run_stages_locally",
    "run_train",
    "train_placed",
    "stage_names",
    "stages_until",
    "train_on_caches",
    "with_generated_datasets",
]
