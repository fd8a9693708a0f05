"""The train stage on a Ray cluster through Ray Train: TorchTrainer places num_machines x num_processes workers,
joins them in one torch.distributed process group (gloo on CPU, nccl on GPUs) and fails the run when a worker
dies. Every worker runs train_on_caches, as a launched process does (accelerate picks up Ray's process group
and RANK / WORLD_SIZE / LOCAL_RANK); rank 0 alone commits in the shared storage root. No retry inside Ray:
the caller's (the train task's) retry resumes from the newest checkpoint in the storage root.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from dreamcore.pipeline.training import train_on_caches
from dreamcore.storage import ArtifactStore, committed_result
from dreamcore.train.plan import TRAIN_STAGE, TrainPlan

if TYPE_CHECKING:
    from dreamcore.storage import StageResult


def run_on_ray(plan: TrainPlan, storage_root: str) -> StageResult:
    """Train the plan on the Ray cluster at plan.training.ray_address and return the committed result; a failed
    worker raises (ray.train.TrainingFailedError)."""
    import ray
    from ray.train import FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    training = plan.training
    ray.init(address=training.ray_address, ignore_reinit_error=True, include_dashboard=False)
    try:
        gpus = ray.cluster_resources().get("GPU", 0) > 0
        trainer = TorchTrainer(
            _train_worker,
            train_loop_config={"plan": plan.model_dump(mode="json"), "storage_root": storage_root},
            scaling_config=ScalingConfig(num_workers=training.num_machines * training.num_processes, use_gpu=gpus),
            torch_config=TorchConfig(backend="nccl" if gpus else "gloo"),
            run_config=RunConfig(name=f"dreamcore-train-{plan.key}", storage_path=ray_run_state(storage_root),
                                 failure_config=FailureConfig(max_failures=0)),
        )
        trainer.fit()
    finally:
        ray.shutdown()
    result = committed_result(ArtifactStore(storage_root), TRAIN_STAGE, plan.key)
    if result is None:
        raise RuntimeError(f"the Ray training finished but train/{plan.key} is not committed")
    return result


def ray_run_state(storage_root: str) -> str:
    """Where Ray Train keeps its own run state: `_ray_train/` in the storage root (absolute, as Ray asks; gc
    leaves it alone). dreamcore's checkpoints stay in the train stage's folder."""
    return f"{storage_root}/_ray_train" if "://" in storage_root else os.path.abspath(f"{storage_root}/_ray_train")


def _train_worker(job: dict[str, Any]) -> None:
    """One Ray Train worker: its share of the batches, in Ray's process group."""
    train_on_caches(TrainPlan.model_validate(job["plan"]), ArtifactStore(job["storage_root"]), show_progress=False)
