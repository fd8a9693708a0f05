"""The dreambooth pipeline, declared once: its stages in order, which upstream stages feed each, which
stages see the generated mask and class-image datasets, and each stage's in-process runner.

The dreambooth flow (flows/dreambooth.py) walks STAGES with one flow step per stage; `dreamcore run
--stage NAME` runs one of them here (pipeline.local). Adding a stage = a Stage below, its task in
tasks/ and its step in the flow's table (tests check that none of the three is missing).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from dreamcore.cache.stages import run_cache
from dreamcore.config import RunConfig, TrainingConfig
from dreamcore.evaluate.stage import run_evaluate
from dreamcore.masks.runner import run_masks
from dreamcore.pipeline.ingest import run_ingest
from dreamcore.pipeline.placement import run_train
from dreamcore.refine.stage import run_refine
from dreamcore.regularise.runner import run_class_images
from dreamcore.storage import ArtifactStore


def _always(training: TrainingConfig) -> bool:
    return True


def _has_refiner(training: TrainingConfig) -> bool:
    return bool(training.refiner_model_name_or_path)


@dataclass(frozen=True)
class Stage:
    """One stage of the dreambooth pipeline."""

    name: str  # what `dreamcore run --stage` and the flow's step table call it
    run_locally: Callable[[RunConfig, ArtifactStore], dict]  # finds its upstream results in storage itself
    reads: tuple[str, ...] = ()  # the stages whose results the flow hands to this one, in this order
    sees_generated_datasets: bool = False  # runs on the config with the generated masks / class images swapped in
    wanted: Callable[[TrainingConfig], bool] = _always  # the flow skips the stage (result None) when False


STAGES: tuple[Stage, ...] = (
    Stage("masks", run_masks),
    Stage("class_images", run_class_images),
    Stage("ingest", run_ingest, sees_generated_datasets=True),
    Stage("cache", run_cache, reads=("ingest",), sees_generated_datasets=True),
    Stage("train", run_train, reads=("cache",), sees_generated_datasets=True),
    Stage("evaluate", run_evaluate, reads=("train", "cache"), sees_generated_datasets=True),
    Stage("refine", run_refine, reads=("train",), sees_generated_datasets=True, wanted=_has_refiner),
)

STAGE_RUNNERS: dict[str, Callable[[RunConfig, ArtifactStore], dict]] = {s.name: s.run_locally for s in STAGES}


def stage_names() -> list[str]:
    """The stage names in pipeline order."""
    return [stage.name for stage in STAGES]


def stages_until(name: str) -> list[str]:
    """The stage names from the first up to and including `name` (`dreamcore run --until NAME`)."""
    names = stage_names()
    return names[: names.index(find_stage(name).name) + 1]


def chosen_stages(listed: str) -> list[str]:
    """The stages of a comma-separated list (`dreamcore run --stages a,b,c`), in pipeline order:
    a later stage reads what earlier ones committed, so the order of the list does not matter."""
    wanted = {find_stage(name.strip()).name for name in listed.split(",") if name.strip()}
    if not wanted:
        raise ValueError(f"no stage named in {listed!r}; stages: {', '.join(stage_names())}")
    return [name for name in stage_names() if name in wanted]


def find_stage(name: str) -> Stage:
    """The stage called `name` (ValueError listing the stage names otherwise)."""
    for stage in STAGES:
        if stage.name == name:
            return stage
    raise ValueError(f"unknown stage {name!r}; stages: {', '.join(stage_names())}")
