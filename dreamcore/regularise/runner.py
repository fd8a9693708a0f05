"""Run the class_images stage in this process (no Prefect): `dreamcore run --stage class_images`."""

from __future__ import annotations

from dreamcore.config import RunConfig
from dreamcore.regularise.generate import generate_class_images
from dreamcore.storage import ArtifactStore


def run_class_images(config: RunConfig, store: ArtifactStore) -> dict[str, dict]:
    """Generate config.class_images (if set); the StageResult (as a dict) under its dataset id."""
    if config.training.class_images is None:
        return {}
    outcome = generate_class_images(store, config)
    return {config.training.class_images.dataset: outcome.result.model_dump() | {"generated": outcome.generated}}
