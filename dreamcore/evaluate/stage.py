"""The evaluate stage: base model vs every checkpoint vs the final (and EMA) export of a committed train stage.

Stage key = the validation/eval fields of the config (the subject-fidelity protocol's included), the
train stage's digest, the eval samples' digest and the fingerprints of the base model, the CLIP model
and the DINO model. Each set of weights is one
resumable part (`weights/<name>/result.json` written last); then the grid, plots, summary table
and the run report are written and the marker commits the folder.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from dreamcore.config import RunConfig, TrainingConfig
from dreamcore.config.fields import differs_from_default
from dreamcore.config.options.families import family_fields_read_by_evaluation
from dreamcore.drawing.cascade import with_first_stage
from dreamcore.drawing.pipelines import load_validation_pipeline, native_size, pipeline_dtype
from dreamcore.drawing.weights import applied, weights_of_training
from dreamcore.evaluate.eval_set import EvalRows, EvalSet, committed_eval_rows, materialise_eval_set
from dreamcore.evaluate.evaluation import read_evaluation, save_evaluation
from dreamcore.evaluate.plans import validation_plan_for
from dreamcore.evaluate.report import write_report
from dreamcore.evaluate.setup import evaluation_size, make_evaluator
from dreamcore.evaluate.subject_fidelity import rank_weights, subject_setup
from dreamcore.models import detect_family, family_named, model_fingerprint
from dreamcore.models.families import ModelFamily
from dreamcore.storage import (
    ArtifactStore,
    StageDetails,
    StageResult,
    committed_result,
    digest_of,
    run_stage,
    stage_key,
)
from dreamcore.train.stage import find_train_result

logger = logging.getLogger(__name__)

EVALUATE_STAGE = "evaluate"
EVALUATE_VERSION = 1
_FIELDS = ("validation_disable", "validation_prompt", "validation_negative_prompt", "num_validation_images",
           "validation_seed", "validation_num_inference_steps", "validation_guidance", "validation_resolution",
           "disable_benchmark", "evaluation_type", "eval_timesteps", "seed", "mixed_precision", "prediction_type",
           "model_type", "lora_type", "refiner_training_strength", "data_aesthetic_score",
           "refiner_negative_aesthetic_score")
_KEYED_WHEN_SET = ("validation_guidance_rescale", *family_fields_read_by_evaluation())
# The subject-fidelity protocol's settings: in the key only when the protocol is on, so the keys of runs
# without it stay as they were.
_PROTOCOL_FIELDS = ("evaluation_prompt_set", "evaluation_prompt", "evaluation_token", "evaluation_class",
                    "evaluation_images_per_prompt", "evaluation_quick", "evaluation_batch_size", "evaluation_dino_model")


def evaluation_fields(config: TrainingConfig) -> dict[str, Any]:
    """The config fields the evaluate stage reads, as hashed into its key (the later ones only when set or, for
    the protocol's, when the protocol is on, so keys of runs without them stay as they were)."""
    names = _FIELDS + (_PROTOCOL_FIELDS if config.evaluation_protocol_on else ())
    later = {name: getattr(config, name) for name in _KEYED_WHEN_SET if differs_from_default(config, name)}
    return {name: getattr(config, name) for name in names} | later


class EvaluateDetails(StageDetails):
    """What a committed evaluation hands the report, sweeps, guards and gc (its result's `details`); the
    pictures the report drew (grid, plots) are extra keys, read with `picture`."""

    train_key: str | None = None
    summary: str | None = None
    rows: list[dict[str, Any]] = Field(default_factory=list, description="one summary row per weights set")
    weights: list[dict[str, Any]] = Field(default_factory=list)
    eval_set: str | None = None
    best_by_eval_loss: str | None = None
    best_by_dino: str | None = Field(default=None, description="only with the subject-fidelity protocol")
    finished_at: float = 0

    def picture(self, name: str) -> str | None:
        """The store path of a picture the report wrote (grid, eval_loss_plot, ...), or None."""
        return (self.model_extra or {}).get(name)


class EvaluatePlan(BaseModel):
    """One evaluation, resolved: the run config (validation fields; a refiner's validation and the protocol read
    its datasets), the training evaluated, the family, the eval rows, the keyed fields and models, the key."""

    model_config = ConfigDict(frozen=True)

    config: RunConfig
    train: StageResult = Field(description="the committed training whose weights are evaluated")
    family: str = Field(description="the base model's family name (models.families)")
    eval_rows: EvalRows = Field(description="which cached rows the eval loss reads (digest in the key)")
    fields: dict[str, Any]
    upstream: dict[str, str]
    model_fingerprint: str
    key: str

    def model_family(self) -> ModelFamily:
        """The family object of `family`."""
        return family_named(self.family)


def plan_evaluation(config: RunConfig, train_result: StageResult, eval_rows: EvalRows) -> EvaluatePlan:
    """The plan of evaluating `train_result` on these eval rows: the family detected and the models
    fingerprinted once."""
    training = config.training
    family = detect_family(training.pretrained_model_name_or_path)
    upstream = {"train": train_result.digest, "eval_set": eval_rows.digest}
    fields, fingerprint = evaluation_fields(training), _models_fingerprint(training, family)
    return EvaluatePlan(config=config, train=train_result, family=family.name, eval_rows=eval_rows, fields=fields,
                        upstream=upstream, model_fingerprint=fingerprint,
                        key=stage_key(EVALUATE_STAGE, EVALUATE_VERSION, fields, upstream, fingerprint))


def _models_fingerprint(config: TrainingConfig, family: ModelFamily) -> str:
    """The base model's denoiser, VAE and scheduler, and the CLIP and DINO models when they score."""
    model = config.pretrained_model_name_or_path
    drawn_by = (family.denoiser, family.latent_vae, "scheduler")  # a pixel-space family has no VAE
    parts = {name: model_fingerprint(model, name) for name in drawn_by if name is not None}
    protocol = config.evaluation_protocol_on
    clip = config.pretrained_evaluation_model_name_or_path if config.evaluation_type == "clip" or protocol else None
    if clip is not None:
        parts["clip"] = model_fingerprint(clip)
    if protocol:
        parts["dino"] = model_fingerprint(config.evaluation_dino_model)
    return digest_of(parts)[:16]


def evaluate_key(config: TrainingConfig, train_result: StageResult, eval_set: EvalSet) -> str:
    """The evaluate stage key for these weights (train digest), eval samples and config (a plan's key, without
    the plan: for checks and tools that hold an EvalSet)."""
    fingerprint = _models_fingerprint(config, detect_family(config.pretrained_model_name_or_path))
    upstream = {"train": train_result.digest, "eval_set": eval_set.digest}
    return stage_key(EVALUATE_STAGE, EVALUATE_VERSION, evaluation_fields(config), upstream, fingerprint)


def evaluate_stage(config: RunConfig, store: ArtifactStore, train_result: StageResult, eval_set: EvalSet | None = None,
                   *, device=None, on_progress: Callable[[int, int], None] | None = None) -> tuple[StageResult, bool]:
    """Plan and evaluate `train_result` in one call (eval samples given, or the committed ones); (result, worked)."""
    rows = (committed_eval_rows(config, store) if eval_set is None
            else EvalRows(source=eval_set.source, digest=eval_set.digest))
    return evaluate_planned(plan_evaluation(config, train_result, rows), store, eval_set, device=device,
                            on_progress=on_progress)


def evaluate_planned(plan: EvaluatePlan, store: ArtifactStore, eval_set: EvalSet | None = None, *, device=None,
                     on_progress: Callable[[int, int], None] | None = None) -> tuple[StageResult, bool]:
    """Evaluate (or resume, or skip when committed) the plan's weights; (result, worked). The eval batches are
    read from the plan's rows unless given."""

    def build(folder: str) -> StageResult:
        samples = eval_set if eval_set is not None else materialise_eval_set(plan.config, store, plan.eval_rows)
        return _build(plan, store, samples, folder, device, on_progress)

    return run_stage(store, EVALUATE_STAGE, plan.key, build, reads=[plan.train.output_uri])


def _build(plan: EvaluatePlan, store: ArtifactStore, eval_set: EvalSet, folder: str, device,
           on_progress) -> StageResult:
    config, training, train_result = plan.config, plan.config.training, plan.train
    device = device or _default_device()
    refs = weights_of_training(store, train_result, include_base=True)
    family = plan.model_family()
    dtype = pipeline_dtype(training.mixed_precision, device)
    pipe = load_validation_pipeline(training.pretrained_model_name_or_path, device, dtype, family=family)
    pipe = with_first_stage(pipe, training, family, device, dtype)  # an upscaler draws from prompts through it
    scheduler = family.objective.noise_scheduler(pipe.scheduler.config, training.prediction_type,
                                                 where=str(training.pretrained_model_name_or_path))
    prediction_type = family.objective.prediction_type(scheduler)
    validation = validation_plan_for(config, store, family)  # a refiner refines dataset images instead of prompts
    evaluator = make_evaluator(training, eval_set.batches, scheduler, family, device, validation,
                               subject_setup(config, store))
    logger.info("evaluating %s", evaluation_size(evaluator, len(refs), validation.size or native_size(pipe)))
    evaluations = []
    for number, ref in enumerate(refs, start=1):
        part = f"{folder}/weights/{ref.name}"
        done = read_evaluation(store, part)
        if done is None:
            images = not (ref.kind == "base" and training.disable_benchmark)
            with applied(pipe, ref, training, training.pretrained_model_name_or_path, family) as ready:
                done = evaluator.evaluate(ready, getattr(ready, family.denoiser), scheduler, prediction_type, ref.name,
                                          ref.step, images=images)
            save_evaluation(store, part, done, {"weights": ref.as_dict()})
            logger.info("evaluated %s: %s", ref.name, done.summary_row() | (done.subject_row() if done.subject else {}))
        evaluations.append(done)
        if on_progress is not None:
            on_progress(number, len(refs))
    return _finish(config, store, train_result, eval_set, plan.key, folder, evaluator, evaluations, refs)


def _default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _finish(config, store, train_result, eval_set, key, folder, evaluator, evaluations, refs) -> StageResult:
    subject = evaluator.subject
    # With the protocol, each row also holds its metrics (what a sweep or a guard ranks by).
    rows = [e.summary_row() | (e.subject_row() if subject else {}) for e in evaluations]
    store.write_json(f"{folder}/summary.json", rows)
    store.write_json(f"{folder}/run.json", {
        "config": config.model_dump(mode="json"), "train": train_result.model_dump(),
        "plan": evaluator.plan.as_dict(), "eval_set": {"source": eval_set.source, "paths": eval_set.paths,
                                                       "digest": eval_set.digest},
        "timesteps": evaluator.timesteps, "weights": [r.as_dict() for r in refs],
        **({"protocol": subject.protocol.as_dict()} if subject else {}),
    })
    report, outputs = write_report(store, folder)
    scored = [r for r in rows if r["eval_loss"] is not None]
    best = min(scored, key=lambda r: r["eval_loss"])["weights"] if scored else None
    return StageResult(
        stage=EVALUATE_STAGE, key=key, output_uri=store.uri(folder),
        digest=digest_of([(e.name, e.summary_row()) for e in evaluations]),
        counts={"weights": len(evaluations), "images": sum(len(e.images) for e in evaluations),
                "eval_samples": eval_set.size},
        report_uri=store.uri(report),
        details=EvaluateDetails(train_key=train_result.key, summary=f"{folder}/summary.json", rows=rows,
                                weights=[r.as_dict() for r in refs], eval_set=eval_set.source, best_by_eval_loss=best,
                                **({"best_by_dino": rank_weights(rows, "dino")[0]} if subject else {}),
                                finished_at=time.time(), **outputs).model_dump(exclude_unset=True),
    )


def committed_evaluations(store: ArtifactStore) -> list[StageResult]:
    """Every committed evaluate result under the store, oldest first."""
    results = [committed_result(store, EVALUATE_STAGE, path.rsplit("/", 1)[-1]) for path in store.list(EVALUATE_STAGE)]
    return sorted((r for r in results if r is not None), key=lambda r: EvaluateDetails.of(r).finished_at)


def run_evaluate(config: RunConfig, store: ArtifactStore) -> dict:
    """`dreamcore run CONFIG --stage evaluate`: evaluate the config's committed training in this process."""
    result, worked = evaluate_stage(config, store, find_train_result(config, store))
    return result.model_dump() | {"evaluated": worked}
