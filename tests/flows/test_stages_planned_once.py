"""The dreambooth flow plans each stage once: per stage, its key is computed once and the model's family detected
once, counted by wrapping the real functions (they still do the work) wherever the project's modules bind them.

PLANNED lists the stages on typed plans that detect the family once (the caches and class images carry the family
their plan detected to the stage, once for every dataset's VAE cache); the caches, class images, masks and ingest are
keyed once too (VaeCachePlan, TextCachePlan, ClassImagePlan, MasksPlan, IngestPlan: the masks step and the ingest
step share the run's ingest plans, so a dataset both ingest is keyed once).
"""

from __future__ import annotations

import inspect
import sys
from collections import Counter

import pytest
from prefect.context import TaskRunContext

from dreamcore.config import load_run_config
from dreamcore.demo import write_demo_project
from dreamcore.models import families
from dreamcore.storage import stages
from flows.dreambooth import dreambooth

pytestmark = pytest.mark.usefixtures("prefect_harness")

# The stage a task belongs to, by task name (the masks step also ingests its image dataset).
_TASK_STAGES = {"masks": "masks", "mask-check": "masks", "class-images": "class_images", "ingest": "ingest",
                "vae_cache": "vae_cache", "text_cache": "text_cache", "train": "train", "evaluate": "evaluate",
                "refine": "refine"}
# The flow plans these stages before their tasks run (the plan is the task's parameter): planning is theirs.
_PLANNERS = {"plan_training": "train", "plan_evaluation": "evaluate", "plan_refine": "refine",
             "class_image_plan": "class_images", "vae_cache_plans": "vae_cache", "text_cache_plan": "text_cache",
             "plan_masks": "masks"}
PLANNED = ("train", "evaluate", "text_cache", "vae_cache", "class_images")
# Keyed once too (refine: the demo has no refiner; masks and ingest use no family).
KEYED_ONCE = (*PLANNED, "masks", "ingest")


def _stage_now() -> str:
    """The stage this call belongs to: the running task's, else the plan being built in the flow."""
    context = TaskRunContext.get()
    if context is not None:
        return _TASK_STAGES.get(context.task.name, context.task.name)
    for frame in inspect.stack():
        if frame.function in _PLANNERS:
            return _PLANNERS[frame.function]
    return "flow"


def _wrap_everywhere(monkeypatch, original, wrapper) -> None:
    """Bind `wrapper` wherever the project's modules hold `original` (imported by name or looked up late)."""
    for name, module in list(sys.modules.items()):
        if module is not None and name.split(".")[0] in ("dreamcore", "tasks", "flows"):
            for attribute, value in list(vars(module).items()):
                if value is original:
                    monkeypatch.setattr(module, attribute, wrapper)


@pytest.fixture(scope="module")
def counted_run(tmp_path_factory):
    """The demo's dreambooth flow run once while counting: (flow results, keys computed: Counter of
    (stage, key), families detected: Counter of stage)."""
    config = load_run_config(write_demo_project(tmp_path_factory.mktemp("demo")))
    training = config.training.model_validate(config.training.model_dump() | {
        "max_train_steps": 2, "checkpointing_steps": 2,
        "class_images": {"prompt": "a photo of a toy", "count": 2, "resolutions": [64], "num_inference_steps": 2,
                         "batch_size": 2, "dataset": "regularisation"}})
    keys: Counter = Counter()
    detections: Counter = Counter()
    real_key, real_detect = stages.stage_key, families.detect_family

    def counting_stage_key(stage, *args, **kwargs):
        key = real_key(stage, *args, **kwargs)
        keys[(stage, key)] += 1
        return key

    def counting_detect_family(*args, **kwargs):
        detections[_stage_now()] += 1
        return real_detect(*args, **kwargs)

    with pytest.MonkeyPatch.context() as monkeypatch:
        _wrap_everywhere(monkeypatch, real_key, counting_stage_key)
        _wrap_everywhere(monkeypatch, real_detect, counting_detect_family)
        state = dreambooth(config.model_copy(update={"training": training}), return_state=True)
    assert state.is_completed(), state.message
    return state.result(), keys, detections


@pytest.mark.parametrize("stage", KEYED_ONCE)
def test_a_planned_stage_computes_each_key_once(counted_run, stage) -> None:
    results, keys, _ = counted_run
    found = results[stage].values() if "key" not in results[stage] else [results[stage]]  # by dataset id, or one
    assert {key: n for key, n in keys.items() if key[0] == stage} == {(stage, r["key"]): 1 for r in found}


@pytest.mark.parametrize("stage", PLANNED)
def test_a_planned_stage_detects_its_family_once(counted_run, stage) -> None:
    _, _, detections = counted_run
    assert detections[stage] == 1, dict(detections)
