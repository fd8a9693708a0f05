"""Experiment tracking: one tiny training with in-training validation, CLIP score and eval loss logs its
scalars and validation images to tensorboard event files, an offline wandb run and an mlflow sqlite store;
report_to none logs nothing; tracking settings never re-key the train stage; bad report_to values and
missing tracker packages are config errors naming what to do."""

from __future__ import annotations

import json
import sys

import pytest
from pydantic import ValidationError

from dreamcore.config import RunConfig, TrainingConfig
from dreamcore.data.demo import write_demo_dataset
from dreamcore.storage import ArtifactStore, StageResult

SCALARS = {"train/loss", "train/lr", "eval/loss", "eval/clip_score"}


def _run(tmp_path, tiny_models, **tracking) -> StageResult:
    from dreamcore.pipeline import run_ingest, run_train

    subject = write_demo_dataset(tmp_path / "demo", n_images=4, include_masks=False)
    crop = {"resolution": 64, "crop": True, "crop_aspect": "square", "caption_strategy": "textfile"}
    config = RunConfig.model_validate({"training": {
        "pretrained_model_name_or_path": str(tiny_models["sd"]), "model_family": "sd1x", "mixed_precision": "no",
        "storage_root": str(tmp_path / "artifacts"), "output_dir": str(tmp_path / "output"), "max_train_steps": 2,
        "checkpointing_steps": 2, "train_batch_size": 2, "lora_rank": 4, "learning_rate": 1e-2, "optimizer": "adamw",
        "validation_prompt": "sks toy", "validation_num_inference_steps": 2, "validation_resolution": 64,
        "validation_steps": 1, "evaluation_type": "clip", "pretrained_evaluation_model_name_or_path":
        str(tiny_models["clip"]), "eval_steps_interval": 1, "eval_timesteps": 2, "eval_dataset_fraction": 0.25,
        **tracking}, "datasets": [{"id": "subject", "instance_data_dir": str(subject.images_dir), **crop}]})
    store = ArtifactStore(config.training.resolved_storage_root)
    run_ingest(config, store)
    return StageResult.model_validate(run_train(config, store)["train"])


def _wandb_records(run_file):
    """The protobuf records of an offline .wandb file. wandb 0.31 ships no Python reader; the file is a
    7-byte ":W&B" header, then LevelDB-log framing: 32 KiB blocks of chunks (crc32c 4, length 2 LE,
    type 1: full, first, middle, last)."""
    data, block, pending = run_file.read_bytes(), 32768, b""
    assert data[:4] == b":W&B"
    position = 7
    while position + 7 <= len(data):
        if block - position % block < 7:  # a block's tail too short for a header is padding
            position += block - position % block
            continue
        length, kind = int.from_bytes(data[position + 4:position + 6], "little"), data[position + 6]
        pending += data[position + 7:position + 7 + length]
        position += 7 + length
        if kind in (1, 4):  # full or last
            yield pending
            pending = b""


def _wandb_history(run_file) -> list[dict]:
    """History rows of an offline run, parsed with wandb's own Record protobuf."""
    from wandb.proto import wandb_internal_pb2

    rows = []
    for data in _wandb_records(run_file):
        record = wandb_internal_pb2.Record()
        record.ParseFromString(data)
        if record.WhichOneof("record_type") == "history":
            rows.append({item.key or "/".join(item.nested_key): json.loads(item.value_json)
                         for item in record.history.item})
    return rows


@pytest.mark.usefixtures("one_torch_thread")
def test_tensorboard_wandb_and_mlflow_receive_losses_scores_and_images(tmp_path, tiny_models, monkeypatch) -> None:
    from mlflow.tracking import MlflowClient
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    monkeypatch.delenv("WANDB_MODE", raising=False)  # offline is the default: nothing may reach the network
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    logs = tmp_path / "tracking"
    trained = _run(tmp_path, tiny_models, report_to="tensorboard,wandb,mlflow", tracker_project_name="toys",
                   tracker_run_name="first", logging_dir=str(logs))
    assert trained.counts["steps"] == 2

    events = EventAccumulator(str(logs / "toys" / "first"), size_guidance={"scalars": 0, "images": 0})
    events.Reload()
    assert SCALARS <= set(events.Tags()["scalars"])
    assert [e.step for e in events.Scalars("train/loss")] == [1, 2]
    assert [e.step for e in events.Scalars("eval/loss")] == [0, 1, 2]  # the base model's row, then each step
    assert any(tag.startswith("validation/") for tag in events.Tags()["images"])

    run_files = list((logs / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(run_files) == 1
    history = _wandb_history(run_files[0])
    logged = {key for row in history for key in row}
    assert SCALARS <= logged and any(key.startswith("validation/") for key in logged)
    losses = [row["train/loss"] for row in history if "train/loss" in row]
    assert len(losses) == 2 and all(loss > 0 for loss in losses)

    client = MlflowClient(f"sqlite:///{logs / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("toys")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.run_name == "first" and run.info.status == "FINISHED"
    assert SCALARS <= set(run.data.metrics)
    assert [m.step for m in client.get_metric_history(run.info.run_id, "train/loss")] == [1, 2]
    assert float(run.data.params["learning_rate"]) == 1e-2
    assert client.list_artifacts(run.info.run_id)  # the validation images


@pytest.mark.usefixtures("one_torch_thread")
def test_report_to_none_logs_nothing(tmp_path, tiny_models) -> None:
    _run(tmp_path, tiny_models, logging_dir=str(tmp_path / "tracking"))
    assert not (tmp_path / "tracking").exists()


def test_tracking_settings_do_not_re_key_the_train_stage(tiny_models, tmp_path) -> None:
    from dreamcore.train.stage import train_key

    base = TrainingConfig(pretrained_model_name_or_path=str(tiny_models["sd"]), model_family="sd1x")
    tracked = base.model_copy(update={"report_to": "tensorboard", "tracker_project_name": "p",
                                      "tracker_run_name": "r", "logging_dir": str(tmp_path),
                                      "mlflow_tracking_uri": "sqlite:///x.db"})
    assert train_key(tracked, {"text_cache": "t"}) == train_key(base, {"text_cache": "t"})


@pytest.mark.parametrize(
    ("report_to", "message"),
    [
        ("comet_ml", "report_to 'comet_ml' is not supported: choose from tensorboard, wandb, mlflow"),
        ("tensorboard,neptune", "unknown report_to 'neptune'"),
    ],
)
def test_report_to_values_we_do_not_log_to_are_refused(report_to, message) -> None:
    with pytest.raises(ValidationError, match=message):
        TrainingConfig(report_to=report_to)


def test_a_tracker_without_its_package_names_the_package(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "wandb", None)  # as if not installed: importing it fails
    with pytest.raises(ValidationError, match="needs the wandb package: pip install 'dreamcore\\[tracking\\]'"):
        TrainingConfig(report_to="all")
    assert TrainingConfig(report_to=["tensorboard", "none"]).report_to == "tensorboard"
