"""The swap-in of generated datasets: after the masks and class_images stages, the mask and
regularisation datasets read what those stages wrote, so later stages ingest, digest and cache them
like user data. The flow swaps in the results it just got; a local run, the committed ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dreamcore.config import DatasetSpec, RunConfig
from dreamcore.data.ingest import STAGE, ingest_key, read_manifest, scan_dataset
from dreamcore.masks import masked_dataset, with_generated_masks
from dreamcore.masks.clipseg import clipseg_fingerprint
from dreamcore.masks.generate import STAGE as MASKS_STAGE, masks_key
from dreamcore.regularise import with_class_images
from dreamcore.regularise.generate import STAGE as CLASS_STAGE, class_image_plan
from dreamcore.storage import ArtifactStore, StageResult, committed_result


def with_generated_datasets(config: RunConfig, results: Mapping[str, Any]) -> RunConfig:
    """The config as the stages after generation see it, from the generation stages' results by stage
    name: "masks" {image dataset id: StageResult} and "class_images" (StageResult or None)."""
    options = config.training.mask_generation
    if options is not None:
        config = with_generated_masks(config, results["masks"][masked_dataset(config, options).id])
    if results["class_images"] is not None:
        config = with_class_images(config, results["class_images"])
    return config


def committed_generation(config: RunConfig, store: ArtifactStore) -> dict[str, Any]:
    """The committed results of the generation stages, shaped as with_generated_datasets takes them.
    A generation stage the config asks for that has not run is a clear error."""
    results: dict[str, Any] = {"masks": {}, "class_images": None}
    options = config.training.mask_generation
    if options is not None:
        image = masked_dataset(config, options)
        rows = read_manifest(store, _committed_ingest(store, image))
        key = masks_key(options, rows, clipseg_fingerprint(options.model))
        results["masks"][image.id] = _require(committed_result(store, MASKS_STAGE, key), "masks")
    if config.training.class_images is not None:
        key = class_image_plan(config).key
        results["class_images"] = _require(committed_result(store, CLASS_STAGE, key), "class_images")
    return results


def _committed_ingest(store: ArtifactStore, spec: DatasetSpec) -> StageResult:
    """The masks stage ingests its image dataset itself: no committed ingest means masks did not run."""
    return _require(committed_result(store, STAGE, ingest_key(scan_dataset(spec))), "masks")


def _require(result: StageResult | None, stage: str) -> StageResult:
    if result is None:
        raise RuntimeError(
            f"stage {stage!r} has not run for this config and data: run `dreamcore run CONFIG --stage {stage}` first"
        )
    return result
