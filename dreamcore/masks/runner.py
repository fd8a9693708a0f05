"""Run the masks stage in this process (no Prefect): `dreamcore run --stage masks`, `dreamcore masks generate`;
and the masks stage's plan, which the flow builds once per image dataset."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from dreamcore.config import DatasetSpec, RunConfig
from dreamcore.config.options.generation import MaskGenerationOptions
from dreamcore.data.ingest import ingest_dataset, read_manifest, scan_dataset
from dreamcore.masks.check import check_user_masks, user_masks_key
from dreamcore.masks.clipseg import clipseg_fingerprint
from dreamcore.masks.datasets import masked_dataset, user_mask_pairs
from dreamcore.masks.generate import generate_masks, masks_key
from dreamcore.storage import ArtifactStore, StageResult


class MasksPlan(BaseModel):
    """One image dataset's masks, keyed once: the image dataset and its ingest, the user's mask dataset to check
    (None: generate with mask_generation and CLIPSeg of this fingerprint), and the key."""

    model_config = ConfigDict(frozen=True)

    image: DatasetSpec
    ingested: StageResult
    masks: DatasetSpec | None = None
    fingerprint: str | None = Field(default=None, description="CLIPSeg's fingerprint (generated masks)")
    key: str


def plan_masks(store: ArtifactStore, image: DatasetSpec, ingested: StageResult,
               masks: DatasetSpec | MaskGenerationOptions) -> MasksPlan:
    """The plan of checking the user's `masks` dataset against `image`'s accepted images, or of generating
    them with these mask_generation options."""
    rows = read_manifest(store, ingested)
    if isinstance(masks, DatasetSpec):
        return MasksPlan(image=image, ingested=ingested, masks=masks, key=user_masks_key(image, rows, masks))
    options = masks
    fingerprint = clipseg_fingerprint(options.model)
    return MasksPlan(image=image, ingested=ingested, fingerprint=fingerprint,
                     key=masks_key(options, rows, fingerprint))


def run_masks(config: RunConfig, store: ArtifactStore) -> dict[str, dict]:
    """Generate the configured masks and check user-provided ones; StageResults (as dicts) by image dataset id."""
    results: dict[str, dict] = {}
    options = config.training.mask_generation
    if options is not None:
        image = masked_dataset(config, options)
        rows = read_manifest(store, ingest_dataset(store, scan_dataset(image)).result)
        outcome = generate_masks(store, config, image, rows)
        results[image.id] = outcome.result.model_dump() | {"generated": outcome.generated}
    for image, masks in user_mask_pairs(config):
        rows = read_manifest(store, ingest_dataset(store, scan_dataset(image)).result)
        results[image.id] = check_user_masks(store, image, rows, masks).model_dump()
    return results
