"""The class-images flow feeds a regularisation dataset that ingests with its captions."""

from __future__ import annotations

import pytest

from dreamcore.config import RunConfig
from dreamcore.data.ingest import read_manifest
from dreamcore.regularise import with_class_images
from dreamcore.storage import ArtifactStore
from flows.ingest import ingest_flow
from flows.regularise import class_images_flow

pytestmark = pytest.mark.usefixtures("prefect_harness", "one_torch_thread")


def test_class_images_flow_then_ingest(tiny_models, tmp_path) -> None:
    from dreamcore.data.demo import write_demo_dataset

    demo = write_demo_dataset(tmp_path / "demo", n_images=2)
    root = str(tmp_path / "artifacts")
    config = RunConfig.model_validate(
        {
            "training": {
                "pretrained_model_name_or_path": str(tiny_models["sd"]),
                "mixed_precision": "no",
                "storage_root": root,
                "class_images": {"prompt": "a photo of a toy", "count": 2, "num_inference_steps": 2},
            },
            "datasets": [{"id": "subject", "instance_data_dir": str(demo.images_dir), "caption_strategy": "textfile"}],
        }
    )
    result = class_images_flow(config)
    assert result.counts == {"images": 2}
    updated = with_class_images(config, result)
    ingested = ingest_flow(updated)
    assert ingested["regularisation"].counts == {"accepted": 2, "rejected": 0}
    rows = read_manifest(ArtifactStore(root), ingested["regularisation"])
    assert [r["captions"] for r in rows] == [["a photo of a toy"]] * 2
    assert updated.dataset("regularisation").is_regularisation_data

    no_class_images = RunConfig.model_validate(
        config.model_dump() | {"training": config.training.model_dump() | {"class_images": None}}
    )
    assert class_images_flow(no_class_images) is None
