"""Helpers for the cache tests: the demo subject (8 images of 80-160 px, masks), ingested, at 64 px."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from dreamcore.cache.vae import VaeCacheJob, VaeCacheSettings
from dreamcore.config import DatasetSpec
from dreamcore.data.demo import DemoDataset, write_demo_dataset
from dreamcore.data.ingest import ingest_dataset, scan_dataset
from dreamcore.storage import ArtifactStore


@dataclass
class CacheSetup:
    store: ArtifactStore
    root: str
    demo: DemoDataset
    model: str
    image: DatasetSpec
    masks: DatasetSpec

    def job(
        self,
        image: DatasetSpec | None = None,
        masks: DatasetSpec | None | bool = True,
        root: str | None = None,
        **settings,
    ) -> VaeCacheJob:
        """A VAE cache job (ingesting first) for the image dataset; masks=False leaves masks out."""
        image = image or self.image
        mask_spec = self.masks if masks is True else (masks or None)
        store = ArtifactStore(root) if root else self.store
        return VaeCacheJob(
            spec=image,
            ingest=ingest_dataset(store, scan_dataset(image)).result,
            model_path=self.model,
            storage_root=root or self.root,
            settings=VaeCacheSettings(**({"shard_size": 3} | settings)),
            masks=mask_spec,
            masks_ingest=ingest_dataset(store, scan_dataset(mask_spec)).result if mask_spec else None,
        )


@pytest.fixture
def cache_setup(tmp_path: Path, tiny_models) -> CacheSetup:
    demo = write_demo_dataset(tmp_path / "demo", n_images=8)
    root = str(tmp_path / "artifacts")
    image = DatasetSpec(
        id="subject",
        instance_data_dir=str(demo.images_dir),
        caption_strategy="textfile",
        conditioning_data="subject-masks",
        resolution=64,
        resolution_type="pixel",
        crop=True,
        crop_aspect="preserve",
        crop_style="random",
    )
    masks = DatasetSpec(
        id="subject-masks",
        dataset_type="conditioning",
        conditioning_type="mask",
        instance_data_dir=str(demo.masks_dir),
        resolution=64,
        resolution_type="pixel",
    )
    return CacheSetup(ArtifactStore(root), root, demo, str(tiny_models["sd"]), image, masks)
