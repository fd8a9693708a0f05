"""A SimpleTuner-style Qwen-Image config (its published example's keys: tests/fixtures/simpletuner/examples/
st-qwen_image.peft-lora.json) passes `dreamcore config check` and trains on the tiny Qwen-Image; its flavours name
the hub ids, and the edit flavours are refused by key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dreamcore.cli import main
from dreamcore.config import ConfigError, TrainingConfig, load_config
from dreamcore.data.demo import write_demo_dataset

EXAMPLE = Path(__file__).resolve().parents[1] / "fixtures" / "simpletuner" / "examples" / "st-qwen_image.peft-lora.json"


def test_the_flavours_name_qwen_image_hub_ids_and_edit_flavours_are_refused(tmp_path) -> None:
    loaded = load_config(EXAMPLE)
    assert loaded.training.model_family == "qwen_image"
    assert loaded.training.pretrained_model_name_or_path == "Qwen/Qwen-Image"  # v1.0
    assert TrainingConfig(model_family="qwen_image").pretrained_model_name_or_path == "Qwen/Qwen-Image-2512"  # v2.0
    edit = tmp_path / "edit.json"
    edit.write_text(json.dumps({"model_family": "qwen_image", "model_flavour": "edit-v2"}))
    with pytest.raises(ConfigError, match="model_flavour.*'edit-v2'.*refused.*Qwen-Image-Edit"):
        load_config(edit)


def test_config_check_then_train(tmp_path, capsys, tiny_models) -> None:
    data = write_demo_dataset(tmp_path / "data", n_images=4)
    backend = [
        {"id": "subject", "type": "local", "instance_data_dir": str(data.images_dir), "caption_strategy": "textfile",
         "resolution": 64, "resolution_type": "pixel", "minimum_image_size": 64, "repeats": 1},
        {"id": "text-embeds", "type": "local", "dataset_type": "text_embeds", "default": True},
    ]
    (tmp_path / "multidatabackend.json").write_text(json.dumps(backend, indent=2))
    # The example as published, on the tiny model and a few steps at 64 px on the CPU.
    config = json.loads(EXAMPLE.read_text()) | {
        "pretrained_model_name_or_path": str(tiny_models["qwen_image"]), "output_dir": str(tmp_path / "output"),
        "data_backend_config": "multidatabackend.json", "max_train_steps": 3, "train_batch_size": 2, "lora_rank": 4,
        "lora_alpha": 4, "mixed_precision": "no", "validation_resolution": "64x64", "resolution": 64,
        "resolution_type": "pixel",
    }
    (tmp_path / "config.json").write_text(json.dumps(config, indent=2))
    assert main(["config", "check", str(tmp_path / "config.json")]) == 0
    resolved = json.loads(capsys.readouterr().out)["training"]
    assert resolved["model_family"] == "qwen_image" and resolved["base_model_precision"] == "int2-quanto"
    assert resolved["flow_schedule_shift"] == 1.73
    assert main(["run", str(tmp_path / "config.json"), "--stage", "ingest"]) == 0
    capsys.readouterr()
    assert main(["run", str(tmp_path / "config.json"), "--stage", "train"]) == 0
    trained = json.loads(capsys.readouterr().out)["train"]
    assert trained["details"]["family"] == "qwen_image" and trained["counts"]["steps"] == 3
    assert set(trained["details"]["exports"]) == {"diffusers_lora"}
