"""Run the masks stage in this process (no Prefect): `dreamcore run --stage masks`, `dreamcore masks generate`."""

from __future__ import annotations

from dreamcore.config import RunConfig
from dreamcore.data.ingest import ingest_dataset, read_manifest, scan_dataset
from dreamcore.masks.check import check_user_masks
from dreamcore.masks.datasets import masked_dataset, user_mask_pairs
from dreamcore.masks.generate import generate_masks
from dreamcore.storage import ArtifactStore


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
