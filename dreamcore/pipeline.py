"""Run single stages in-process, without Prefect: the local-debugging path of `dreamcore run --stage`.

Each runner reads its upstream results from storage (their committed markers) and returns the
stage results as plain dicts.
"""

from __future__ import annotations

from collections.abc import Callable

from dreamcore.cache.stages import run_cache
from dreamcore.config import RunConfig
from dreamcore.data.ingest import ingest_dataset, scan_dataset
from dreamcore.evaluate.stage import run_evaluate
from dreamcore.masks import masked_dataset, with_generated_masks
from dreamcore.masks.runner import run_masks
from dreamcore.refine.stage import run_refine
from dreamcore.regularise import with_class_images
from dreamcore.regularise.runner import run_class_images
from dreamcore.storage import ArtifactStore
from dreamcore.train.runner import run_train


def run_ingest(config: RunConfig, store: ArtifactStore) -> dict[str, dict]:
    """Ingest every image dataset; returns StageResults (as dicts) by dataset id."""
    results = {}
    for spec in config.image_datasets:
        outcome = ingest_dataset(store, scan_dataset(spec))
        results[spec.id] = outcome.result.model_dump() | {"decoded": outcome.decoded}
    return results


STAGE_RUNNERS: dict[str, Callable[[RunConfig, ArtifactStore], dict]] = {
    "ingest": run_ingest,
    "cache": run_cache,
    "masks": run_masks,
    "class_images": run_class_images,
    "train": run_train,
    "evaluate": run_evaluate,
    "refine": run_refine,
}


# Stages that read the generated mask / class-image datasets rather than the config's placeholders.
_AFTER_GENERATION = ("ingest", "cache", "train", "evaluate", "refine")


def run_stage_locally(config: RunConfig, stage: str) -> dict:
    """Run one named stage in this process against the config's storage root."""
    if stage not in STAGE_RUNNERS:
        raise ValueError(f"unknown stage {stage!r}; stages: {', '.join(STAGE_RUNNERS)}")
    store = ArtifactStore(config.training.resolved_storage_root)
    if stage in _AFTER_GENERATION:
        config = with_generated_datasets(config, store)
    return STAGE_RUNNERS[stage](config, store)


def with_generated_datasets(config: RunConfig, store: ArtifactStore) -> RunConfig:
    """The config as the dreambooth flow sees it after the masks and class_images stages: datasets
    pointed at their committed outputs. A generation stage that has not run is a clear error."""
    from dreamcore.data.ingest import read_manifest
    from dreamcore.masks.clipseg import clipseg_fingerprint
    from dreamcore.masks.generate import STAGE as MASKS_STAGE
    from dreamcore.masks.generate import masks_key
    from dreamcore.regularise.generate import STAGE as CLASS_STAGE
    from dreamcore.regularise.generate import class_image_plan
    from dreamcore.storage import committed_result

    options = config.training.mask_generation
    if options is not None:
        image = masked_dataset(config, options)
        rows = read_manifest(store, _committed_ingest(store, image))
        masks = committed_result(store, MASKS_STAGE, masks_key(options, rows, clipseg_fingerprint(options.model)))
        config = with_generated_masks(config, _require(masks, "masks"))
    if config.training.class_images is not None:
        config = with_class_images(config, _require(committed_result(store, CLASS_STAGE, class_image_plan(config).key),
                                                    "class_images"))
    return config


def _committed_ingest(store: ArtifactStore, spec):
    from dreamcore.data.ingest import STAGE, ingest_key
    from dreamcore.storage import committed_result

    return _require(committed_result(store, STAGE, ingest_key(scan_dataset(spec))), "masks")


def _require(result, stage: str):
    if result is None:
        raise RuntimeError(
            f"stage {stage!r} has not run for this config and data: run `dreamcore run CONFIG --stage {stage}` first"
        )
    return result
