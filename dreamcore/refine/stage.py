"""Stage "refine": the Dreamboothed base draws the validation prompts, the (tuned) refiner refines them.

Each (prompt, seed) is one resumable pair: `pairs/p<NN>-seed<S>/` holds base.png, refined.png and
pair.json (written last). Then grid.png (row "base" over row "refined", one column per pair) and
pairs.json are written and the marker commits the folder. Stage key = the drawing fields of the
config, the train stage's digest and the fingerprints of base, refiner and refiner LoRA.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from dreamcore.config import RunConfig, TrainingConfig
from dreamcore.drawing.grids import image_grid
from dreamcore.drawing.images import png_bytes
from dreamcore.drawing.pipelines import load_validation_pipeline, pipeline_dtype
from dreamcore.drawing.weights import WeightsRef, applied, weights_of_training
from dreamcore.evaluate.validation import ValidationPlan
from dreamcore.models import detect_family, family_named, local_model_folder, model_fingerprint
from dreamcore.refine.draw import draw_base, handoff_kind, load_refiner, lora_file, refine, refiner_lora
from dreamcore.storage import ArtifactStore, StageDetails, StageResult, digest_of, run_stage, stage_key
from dreamcore.train.stage import find_train_result

logger = logging.getLogger(__name__)

REFINE_STAGE = "refine"
REFINE_VERSION = 1
PAIR_FILE = "pair.json"
_FIELDS = ("validation_prompt", "validation_negative_prompt", "num_validation_images", "validation_seed", "seed",
           "validation_num_inference_steps", "validation_guidance", "validation_resolution", "mixed_precision",
           "refiner_training_strength", "data_aesthetic_score", "refiner_negative_aesthetic_score")


def refine_plan(config: TrainingConfig) -> ValidationPlan:
    """The validation prompts x seeds, refined at refiner_training_strength (validation_disable does not apply)."""
    plan = ValidationPlan.from_config(config)
    if not config.validation_prompts:
        raise ValueError("the refine stage draws the validation prompts: set validation_prompt")
    return replace(plan, prompts=tuple(config.validation_prompts))


class RefineDetails(StageDetails):
    """What a committed refine stage hands its task's artifacts (its result's `details`)."""

    pairs: list[dict[str, Any]] = Field(description="per (prompt, seed): prompt, seed, base and refined image paths")
    grid: str
    pairs_file: str
    handoff: str = Field(description="latents or image: what the base hands the refiner")
    strength: float | None = None
    train_key: str | None = None
    refiner_model: str
    refiner_lora: str | None = None


class RefinePlan(BaseModel):
    """One refine run, resolved: the drawing options, the training whose final weights the base draws with
    (None: the stock base), the base's family, the keyed fields and models, and the key."""

    model_config = ConfigDict(frozen=True)

    training: TrainingConfig
    train: StageResult | None = None
    family: str = Field(description="the base model's family name (models.families)")
    fields: dict[str, Any]
    upstream: dict[str, str | None]
    model_fingerprint: str
    key: str


def plan_refine(config: RunConfig | TrainingConfig, train_result: StageResult | None) -> RefinePlan:
    """The plan of refining with these drawing fields, trained weights, base, refiner and refiner LoRA."""
    training = config.training if isinstance(config, RunConfig) else config
    if not training.refiner_model_name_or_path:
        raise ValueError("the refine stage needs refiner_model_name_or_path: an SDXL refiner folder or hub id")
    fields = {name: getattr(training, name) for name in _FIELDS}
    upstream = {"train": train_result.digest if train_result else None}
    models = {"base": pipeline_fingerprint(training.pretrained_model_name_or_path),
              "refiner": pipeline_fingerprint(training.refiner_model_name_or_path),
              "refiner_lora": _lora_digest(training.refiner_lora_path)}
    fingerprint = digest_of(models)[:16]
    return RefinePlan(training=training, train=train_result,
                      family=detect_family(training.pretrained_model_name_or_path).name, fields=fields,
                      upstream=upstream, model_fingerprint=fingerprint,
                      key=stage_key(REFINE_STAGE, REFINE_VERSION, fields, upstream, fingerprint))


def refine_key(config: TrainingConfig, train_result: StageResult | None) -> str:
    """The refine stage key (a plan's key, without the plan)."""
    return plan_refine(config, train_result).key


def pipeline_fingerprint(model: str) -> str:
    """Digest of every component a pipeline folder lists in model_index.json (configs and weights)."""
    root = local_model_folder(model)
    index = json.loads((root / "model_index.json").read_text(encoding="utf-8"))
    parts = {name: model_fingerprint(model, name) for name, entry in sorted(index.items())
             if isinstance(entry, list) and entry[0] is not None and (root / name).is_dir()}
    return digest_of(parts)[:16]


def _lora_digest(lora: str | None) -> str | None:
    if lora is None:
        return None
    fs, path = lora_file(lora)
    return hashlib.sha256(fs.cat_file(path)).hexdigest()


def refine_stage(config: RunConfig | TrainingConfig, store: ArtifactStore, train_result: StageResult | None,
                 *, device=None, on_progress: Callable[[int, int], None] | None = None) -> tuple[StageResult, bool]:
    """Plan and refine in one call; (result, worked)."""
    return refine_planned(plan_refine(config, train_result), store, device=device, on_progress=on_progress)


def refine_planned(plan: RefinePlan, store: ArtifactStore, *, device=None,
                   on_progress: Callable[[int, int], None] | None = None) -> tuple[StageResult, bool]:
    """Draw and refine every (prompt, seed) pair (resuming finished pairs; skipped when committed); (result, worked).

    The plan's `train` gives the base its trained weights (final export); None draws with the stock base.
    """
    training, train_result = plan.training, plan.train
    drawing = refine_plan(training)

    def build(folder: str) -> StageResult:
        handoff = handoff_kind(training.pretrained_model_name_or_path, training.refiner_model_name_or_path)
        missing = [cell for cell in drawing.cells if not store.exists(f"{_pair_folder(folder, *cell)}/{PAIR_FILE}")]
        if missing:
            _draw_pairs(plan, store, drawing, folder, missing, handoff, device, on_progress)
        return _finish(training, store, train_result, drawing, plan.key, folder, handoff)

    return run_stage(store, REFINE_STAGE, plan.key, build, reads=[train_result.output_uri] if train_result else [])


def _pair_folder(folder: str, prompt_index: int, seed: int) -> str:
    return f"{folder}/pairs/p{prompt_index:02d}-seed{seed}"


def _draw_pairs(refining: RefinePlan, store, plan, folder, missing, handoff, device, on_progress) -> None:
    """Load both pipelines once and write every missing pair (pair.json last)."""
    training, family = refining.training, family_named(refining.family)
    device = device or _default_device()
    dtype = pipeline_dtype(training.mixed_precision, device)
    base = load_validation_pipeline(training.pretrained_model_name_or_path, device, dtype, family=family)
    refiner = load_refiner(training.refiner_model_name_or_path, device, dtype)
    weights = _base_weights(store, refining.train)
    with applied(base, weights, training, training.pretrained_model_name_or_path, family) as ready, \
            refiner_lora(refiner, training.refiner_lora_path) as tuned:
        for number, (prompt_index, seed) in enumerate(missing, start=1):
            base_image, latents = draw_base(ready, plan, prompt_index, seed)
            refined = refine(tuned, plan, prompt_index, seed, latents if handoff == "latents" else base_image)
            part = _pair_folder(folder, prompt_index, seed)
            store.write_bytes(f"{part}/base.png", png_bytes(base_image))
            store.write_bytes(f"{part}/refined.png", png_bytes(refined))
            store.write_json(f"{part}/{PAIR_FILE}", {"prompt_index": prompt_index, "prompt": plan.prompts[prompt_index],
                                                     "seed": seed, "base": f"{part}/base.png",
                                                     "refined": f"{part}/refined.png", "handoff": handoff})
            if on_progress is not None:
                on_progress(number, len(missing))


def _base_weights(store: ArtifactStore, train_result: StageResult | None):
    """The trained base's final weights, or the stock base without a train result."""
    if train_result is None:
        return WeightsRef("base", "base", 0)
    return next(r for r in weights_of_training(store, train_result, include_base=False) if r.name == "final")


def _default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _finish(training, store, train_result, plan, key, folder, handoff) -> StageResult:
    """The side-by-side grid and pairs.json of every pair; the StageResult."""
    from PIL import Image

    pairs = [store.read_json(f"{_pair_folder(folder, *cell)}/{PAIR_FILE}") for cell in plan.cells]

    def picture(path: str):
        return Image.open(io.BytesIO(store.read_bytes(path))).convert("RGB")

    labels = [plan.column_label(p["prompt_index"], p["seed"]) for p in pairs]
    rows = [(row, [picture(p[row]) for p in pairs]) for row in ("base", "refined")]
    store.write_bytes(f"{folder}/grid.png", png_bytes(image_grid(rows, labels)))
    store.write_json(f"{folder}/pairs.json", pairs)
    digest = hashlib.sha256()
    for pair in pairs:
        for name in ("base", "refined"):
            digest.update(store.read_bytes(pair[name]))
    return StageResult(
        stage=REFINE_STAGE, key=key, output_uri=store.uri(folder), digest=digest.hexdigest(),
        counts={"pairs": len(pairs), "images": 2 * len(pairs)},
        details=RefineDetails(pairs=pairs, grid=f"{folder}/grid.png", pairs_file=f"{folder}/pairs.json",
                              handoff=handoff, strength=plan.strength,
                              train_key=train_result.key if train_result else None,
                              refiner_model=training.refiner_model_name_or_path,
                              refiner_lora=training.refiner_lora_path).model_dump(),
    )


def run_refine(config: RunConfig, store: ArtifactStore) -> dict[str, Any]:
    """`dreamcore run CONFIG --stage refine`: refine the validation images of the config's committed training."""
    result, worked = refine_stage(config, store, find_train_result(config, store))
    return result.model_dump() | {"refined": worked}
