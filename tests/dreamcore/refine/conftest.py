"""Fixtures for the refiner tests: one torch thread and ingested demo runs of the tiny SDXL base and refiner."""

from __future__ import annotations

from pathlib import Path

import pytest

from dreamcore.config import RunConfig


@pytest.fixture(autouse=True)
def tiny_models_on_one_thread(one_torch_thread):
    """Every test here runs tiny models: one torch thread (tests/conftest.py)."""


@pytest.fixture
def make_run(tmp_path: Path):
    """RunConfig factory over one demo dataset (5 subject images of 80-160 px, 64 px buckets, 3 class images)."""
    from dreamcore.data.demo import write_demo_dataset

    demo = write_demo_dataset(tmp_path / "demo", n_images=5, include_masks=False, include_class_images=3)

    def make(model: str, root: str | None = None, **training) -> RunConfig:
        values = {"pretrained_model_name_or_path": model, "storage_root": root or str(tmp_path / "artifacts"),
                  "mixed_precision": "no", "train_batch_size": 2, "seed": 3, "lora_rank": 4, "optimizer": "adamw",
                  "cache_shard_size": 4, "max_train_steps": 3, "checkpointing_steps": 3}
        return RunConfig.model_validate({"training": values | training, "datasets": [
            {"id": "subject", "instance_data_dir": str(demo.images_dir), "caption_strategy": "textfile",
             "resolution": 64, "crop": True, "crop_aspect": "preserve"},
            {"id": "regularisation", "instance_data_dir": str(demo.class_images_dir), "resolution": 64,
             "caption_strategy": "instanceprompt", "instance_prompt": demo.class_prompt, "crop": True,
             "is_regularisation_data": True},
        ]})

    return make


@pytest.fixture
def ingest_and_cache():
    """run -> (store, vae results by dataset id, text result, run_cache's dict), ingested and cached in-process."""
    from dreamcore.cache.stages import run_cache
    from dreamcore.pipeline import run_ingest
    from dreamcore.storage import ArtifactStore, StageResult

    def run(config: RunConfig):
        store = ArtifactStore(config.training.resolved_storage_root)
        run_ingest(config, store)
        caches = run_cache(config, store)
        vae = {k: StageResult.model_validate(v) for k, v in caches["vae_cache"].items()}
        return store, vae, StageResult.model_validate(caches["text_cache"]), caches

    return run
