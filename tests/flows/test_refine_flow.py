"""The refine flow on a trained tiny SDXL: the Dreamboothed base (not the stock one) hands over to the refiner."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from dreamcore.config import RunConfig
from dreamcore.data.demo import write_demo_dataset
from dreamcore.pipeline import run_ingest, run_train
from dreamcore.storage import ArtifactStore, StageResult
from flows.refine import refine_flow

pytestmark = pytest.mark.usefixtures("prefect_harness", "one_torch_thread")


def _picture(store: ArtifactStore, path: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(store.read_bytes(path))).convert("RGB"), dtype=np.int16)


def test_refine_flow_pairs_the_trained_base_with_the_refiner(tiny_models, tmp_path):
    demo = write_demo_dataset(tmp_path / "demo", n_images=4, include_masks=False)
    config = RunConfig.model_validate({
        "training": {"pretrained_model_name_or_path": str(tiny_models["sdxl"]), "mixed_precision": "no",
                     "storage_root": str(tmp_path / "artifacts"), "max_train_steps": 2, "checkpointing_steps": 2,
                     "train_batch_size": 2, "lora_rank": 4, "learning_rate": 5e-2, "optimizer": "adamw",
                     "refiner_model_name_or_path": str(tiny_models["sdxl-refiner"]), "validation_prompt": "sks toy",
                     "validation_num_inference_steps": 3},
        "datasets": [{"id": "subject", "instance_data_dir": str(demo.images_dir), "caption_strategy": "textfile",
                      "resolution": 64, "crop": True, "crop_aspect": "square"}]})
    store = ArtifactStore(config.training.resolved_storage_root)
    run_ingest(config, store)
    trained = StageResult.model_validate(run_train(config, store)["train"])

    result = refine_flow(config, trained)
    stock = refine_flow(config)
    assert result.details["train_key"] == trained.key and stock.details["train_key"] is None
    assert result.counts["pairs"] == stock.counts["pairs"] == 1
    pair, stock_pair = result.details["pairs"][0], stock.details["pairs"][0]
    assert np.abs(_picture(store, pair["base"]) - _picture(store, stock_pair["base"])).max() > 0  # trained base
    assert np.abs(_picture(store, pair["refined"]) - _picture(store, pair["base"])).max() > 0
    assert refine_flow(config, trained) == result
