"""The evaluate flow on S3 storage with a held-out fraction of the subject images as eval samples."""

from __future__ import annotations

import pytest

from dreamcore.config import RunConfig
from dreamcore.data.demo import write_demo_dataset
from dreamcore.pipeline import run_ingest, run_stage_locally, run_train
from dreamcore.storage import ArtifactStore, StageResult
from flows.evaluate import evaluate_flow

pytestmark = pytest.mark.usefixtures("prefect_harness", "one_torch_thread")


def test_flow_evaluates_a_training_on_s3_and_the_local_stage_finds_it(tiny_models, tmp_path, s3_root) -> None:
    subject = write_demo_dataset(tmp_path / "demo", n_images=4, include_masks=False)
    config = RunConfig.model_validate({"training": {
        "pretrained_model_name_or_path": str(tiny_models["sd"]), "model_family": "sd1x", "mixed_precision": "no",
        "storage_root": s3_root, "max_train_steps": 2, "checkpointing_steps": 2, "train_batch_size": 2,
        "lora_rank": 4, "learning_rate": 1e-2, "optimizer": "adamw", "validation_prompt": ["sks toy", "a toy"],
        "validation_num_inference_steps": 2, "validation_resolution": 64, "eval_timesteps": [50, 500, 950],
        "eval_dataset_fraction": 0.25, "evaluation_type": "clip",
        "pretrained_evaluation_model_name_or_path": str(tiny_models["clip"])},
        "datasets": [{"id": "subject", "instance_data_dir": str(subject.images_dir), "resolution": 64, "crop": True,
                      "caption_strategy": "textfile"}]})
    store = ArtifactStore(s3_root)
    run_ingest(config, store)
    train_result = StageResult.model_validate(run_train(config, store)["train"])

    result = evaluate_flow(config, train_result)
    assert result.output_uri.startswith("s3://")
    assert result.details["eval_set"] == "held-out 25% of subject" and result.counts["eval_samples"] == 1
    rows = {r["weights"]: r for r in result.details["rows"]}
    assert list(rows) == ["base", "final"]  # the only checkpoint is the final step: the export stands for it
    assert all(r["images"] == 2 and r["clip_mean"] is not None for r in rows.values())
    assert rows["base"]["eval_loss"] != rows["final"]["eval_loss"]
    assert store.exists(f"evaluate/{result.key}/grid.png") and store.exists(f"evaluate/{result.key}/report.html")
    # The in-process runner (`dreamcore run CONFIG --stage evaluate`) finds the same training and its committed result.
    local = run_stage_locally(config, "evaluate")
    assert local["key"] == result.key and local["evaluated"] is False
