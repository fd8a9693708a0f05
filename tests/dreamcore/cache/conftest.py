"""Helpers for the cache tests: the demo subject (8 images of 80-160 px, masks), ingested, at 64 px."""

from __future__ import annotations

import json
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


# The character-level tiny T5 spells the demo captions in under 64 tokens.
PROJECT_T5_TOKENS = 64


@pytest.fixture
def write_project():
    """write(folder, kind, model, dataset=None, **training) -> config.json of a one-dataset project (4 demo
    images, textfile captions, 64 px) on a tiny model; `dataset` and `training` add or override keys."""

    def write(tmp_path: Path, kind: str, model: Path, dataset: dict | None = None, **training) -> Path:
        demo = write_demo_dataset(tmp_path / "data", n_images=4, include_masks=False, include_class_images=0)
        datasets = [{"id": "subject", "type": "local", "instance_data_dir": str(demo.images_dir),
                     "caption_strategy": "textfile", "resolution": 64, "resolution_type": "pixel"} | (dataset or {})]
        config = {"--model_family": kind, "--pretrained_model_name_or_path": str(model), "--train_batch_size": 2,
                  "--tokenizer_max_length": PROJECT_T5_TOKENS, "--storage_root": str(tmp_path / "artifacts"),
                  "--data_backend_config": "multidatabackend.json"} | training
        (tmp_path / "multidatabackend.json").write_text(json.dumps(datasets))
        (tmp_path / "config.json").write_text(json.dumps(config))
        return tmp_path / "config.json"

    return write


@pytest.fixture
def run_stage():
    """run(config.json, stage, capsys) -> the JSON `dreamcore run CONFIG --stage STAGE` prints (exit 0)."""
    from dreamcore.cli import main

    def run(config: Path, stage: str, capsys) -> dict:
        assert main(["run", str(config), "--stage", stage]) == 0
        return json.loads(capsys.readouterr().out)

    return run
