"""Flow: the whole Dreambooth pipeline, stage by stage as dreamcore.pipeline declares it. Every stage
skips work it has already committed."""

from __future__ import annotations

from functools import partial
from typing import Any

from prefect import flow

from dreamcore.config import RunConfig
from dreamcore.data.ingest import IngestPlan
from dreamcore.pipeline import STAGES, preflight, with_generated_datasets
from flows.cache import cache_tasks
from flows.evaluate import evaluate_tasks
from flows.ingest import ingest_tasks
from flows.masks import masks_tasks
from flows.refine import refine_tasks
from flows.regularise import class_images_tasks
from flows.train import train_tasks

# The step of each declared stage: its tasks, called with the run config and then the results of
# the stages it reads (Stage.reads), in that order.
STEPS = {
    "masks": masks_tasks,
    "class_images": class_images_tasks,
    "ingest": ingest_tasks,
    "cache": cache_tasks,
    "train": train_tasks,
    "evaluate": evaluate_tasks,
    "refine": refine_tasks,
}


@flow(name="dreambooth", log_prints=True)
def dreambooth(config: RunConfig) -> dict:
    """masks → class images → ingest → caches → train → evaluate → refine (when a refiner is set).

    The stages after generation run on the config whose mask and regularisation datasets read the
    generated masks and class images. Stages run as tasks of this one flow rather than as subflows:
    each subflow costs about a second of Prefect bookkeeping, which is most of a warm (all Cached) rerun.
    """
    preflight(config)  # missing dataset folders or storage credentials: fail now, in one line, creating nothing
    results: dict[str, Any] = {}
    # The run's ingest plans by dataset id: the masks and ingest steps share them (a dataset is keyed once).
    ingest_plans: dict[str, IngestPlan] = {}
    steps = STEPS | {name: partial(STEPS[name], plans=ingest_plans) for name in ("masks", "ingest")}
    for stage in STAGES:
        if not stage.wanted(config.training):
            results[stage.name] = None
            continue
        seen = with_generated_datasets(config, results) if stage.sees_generated_datasets else config
        results[stage.name] = steps[stage.name](seen, *(results[name] for name in stage.reads))
    return _summary(results)


def _summary(results: dict[str, Any]) -> dict:
    """JSON-ready results: {stage: StageResult dict, or {dataset id: StageResult dict}}, with the cache
    stage's two parts (vae_cache, text_cache) side by side with the other stages."""

    def dump(value):
        if isinstance(value, dict):
            return {key: dump(item) for key, item in value.items()}
        return None if value is None else value.model_dump(mode="json")

    stages = {name: value for name, value in results.items() if name != "cache"} | results["cache"]
    return {stage: dump(value) for stage, value in stages.items()}
