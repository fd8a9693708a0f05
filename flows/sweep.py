"""Flow: a hyper-parameter sweep. The stages before training (masks, class images, ingest, caches) run
once; the trainings fan out with Prefect mapping over the sweep's points, at most max_concurrent at a
time; each is evaluated; the points are ranked and the winner recorded (runs/<sweep>/best.json).

Every train and evaluate task is keyed by its stage key, so rerunning a sweep with one more point
trains and evaluates only that point: the others come back Cached."""

from __future__ import annotations

from typing import Any

from prefect import flow, unmapped
from prefect.task_runners import ProcessPoolTaskRunner, ThreadPoolTaskRunner

from dreamcore.config import RunConfig
from dreamcore.pipeline import (
    STAGES,
    CacheResults,
    plan_evaluating,
    plan_training_on_caches,
    with_generated_datasets,
)
from dreamcore.sweep import SweepSpec, sweep_points
from flows.dreambooth import STEPS
from tasks.evaluate import evaluate
from tasks.results import result_storage_for
from tasks.sweep import rank_and_record
from tasks.train import train

SHARED_STAGES = ("masks", "class_images", "ingest", "cache")


@flow(name="sweep", log_prints=True)
def sweep(config: RunConfig, spec: SweepSpec) -> dict:
    """Train and evaluate every point of `spec` on `config`; rank them; record and return the winner."""
    points = sweep_points(config, spec)
    print(f"sweep {spec.name!r}: {len(points)} points, at most {spec.max_concurrent} training at a time")
    results: dict[str, Any] = {}
    for stage in STAGES:
        if stage.name in SHARED_STAGES and stage.wanted(config.training):
            seen = with_generated_datasets(config, results) if stage.sees_generated_datasets else config
            results[stage.name] = STEPS[stage.name](seen, *(results[name] for name in stage.reads))
        elif stage.name in SHARED_STAGES:
            results[stage.name] = None
    configs = [with_generated_datasets(p.config, results) for p in points]
    root = config.training.resolved_storage_root
    storage = result_storage_for(root)
    caches = CacheResults.model_validate(results["cache"])
    plans = [plan_training_on_caches(point, caches) for point in configs]
    with _trainings_runner(spec.max_concurrent) as runner:
        trained = runner.map(train.with_options(result_storage=storage), {"plan": plans, "storage_root": unmapped(root)})
        # Each evaluation is planned (keyed) once its training is done, from that training's result.
        evaluated = [runner.submit(evaluate.with_options(result_storage=storage),
                                   {"plan": plan_evaluating(point, done.result(), caches), "storage_root": root})
                     for point, done in zip(configs, trained)]
        entries = [{"point": p.id, "values": p.values, "label": p.label,
                    "results": {"train": t.result().model_dump(mode="json"), "evaluate": e.result().model_dump(mode="json")}}
                   for p, t, e in zip(points, trained, evaluated)]
    return rank_and_record(root, spec, entries, _json_ready(results))


def _trainings_runner(max_concurrent: int):
    """The pool the trainings are mapped onto; its size is the concurrency limit (.map submits every point).

    One at a time stays in this process. Several run in worker processes: model loading (meta-device
    initialisation), the seeded RNGs and accelerate's state are per process, so trainings must not share one.
    """
    if max_concurrent == 1:
        return ThreadPoolTaskRunner(max_workers=1)
    return ProcessPoolTaskRunner(max_workers=max_concurrent)


def _json_ready(value: Any) -> Any:
    """Stage results (StageResults, nested by dataset id) as JSON, for the sweep's record."""
    if isinstance(value, dict):
        return {key: _json_ready(item) for key, item in value.items()}
    return None if value is None else value.model_dump(mode="json")
