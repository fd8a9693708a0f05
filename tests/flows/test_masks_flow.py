"""The masks flow: generated masks for one dataset, user masks checked for another; then all ingest."""

from __future__ import annotations

import pytest

from dreamcore.config import RunConfig
from dreamcore.data.demo import write_demo_dataset
from dreamcore.masks import with_generated_masks
from flows.ingest import ingest_flow
from flows.masks import masks_flow

pytestmark = pytest.mark.usefixtures("prefect_harness", "one_torch_thread")


def test_masks_flow_generates_checks_and_feeds_ingest(tiny_models, tmp_path) -> None:
    generated = write_demo_dataset(tmp_path / "generated", n_images=2)
    provided = write_demo_dataset(tmp_path / "provided", n_images=2, seed=1)
    config = RunConfig.model_validate(
        {
            "training": {
                "pretrained_model_name_or_path": str(tiny_models["sd"]),
                "storage_root": str(tmp_path / "artifacts"),
                "mask_generation": {"dataset": "subject", "prompt": "toy", "model": str(tiny_models["clipseg"])},
            },
            "datasets": [
                {"id": "subject", "instance_data_dir": str(generated.images_dir), "caption_strategy": "textfile"},
                {
                    "id": "second",
                    "instance_data_dir": str(provided.images_dir),
                    "caption_strategy": "textfile",
                    "conditioning_data": "second-masks",
                },
                {
                    "id": "second-masks",
                    "dataset_type": "conditioning",
                    "conditioning_type": "mask",
                    "instance_data_dir": str(provided.masks_dir),
                },
            ],
        }
    )
    results = masks_flow(config)
    assert set(results) == {"subject", "second"}
    assert results["subject"].details["mode"] == "generate" and results["subject"].counts["masks"] == 2
    assert results["second"].details["mode"] == "user" and results["second"].counts["masks"] == 2

    ingested = ingest_flow(with_generated_masks(config, results["subject"]))
    assert set(ingested) == {"subject", "subject-masks", "second", "second-masks"}
    assert ingested["subject-masks"].counts == {"accepted": 2, "rejected": 0}
    assert masks_flow(config) == results
