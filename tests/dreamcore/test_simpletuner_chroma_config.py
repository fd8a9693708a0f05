"""A SimpleTuner-style Chroma config (its published example, tests/fixtures/simpletuner/examples/
st-chroma.peft-lora.json) passes `dreamcore config check` and trains on the tiny Chroma; its default flavour names
lodestones/Chroma1-Base."""

from __future__ import annotations

import json
from pathlib import Path

from dreamcore.cli import main
from dreamcore.config import TrainingConfig, load_config
from dreamcore.data.demo import write_demo_dataset

EXAMPLE = Path(__file__).resolve().parents[1] / "fixtures" / "simpletuner" / "examples" / "st-chroma.peft-lora.json"


def test_the_flavours_name_chromas_hub_ids() -> None:
    loaded = load_config(EXAMPLE)
    assert loaded.training.model_family == "chroma"
    assert loaded.training.pretrained_model_name_or_path == "lodestones/Chroma1-Base"  # the default flavour
    for flavour, hub_id in (("hd", "lodestones/Chroma1-HD"), ("flash", "lodestones/Chroma1-Flash")):
        assert TrainingConfig(model_family="chroma", model_flavour=flavour).pretrained_model_name_or_path == hub_id


def test_config_check_then_train(tmp_path, capsys, tiny_models) -> None:
    data = write_demo_dataset(tmp_path / "data", n_images=4)
    backend = [
        {"id": "subject", "type": "local", "instance_data_dir": str(data.images_dir), "caption_strategy": "textfile",
         "resolution": 64, "resolution_type": "pixel", "minimum_image_size": 64, "repeats": 1},
        {"id": "text-embeds", "type": "local", "dataset_type": "text_embeds", "default": True},
    ]
    (tmp_path / "multidatabackend.json").write_text(json.dumps(backend, indent=2))
    # The example as published, on the tiny model and a few steps at 64 px on the CPU, T5 at 32 tokens.
    config = json.loads(EXAMPLE.read_text()) | {
        "pretrained_model_name_or_path": str(tiny_models["chroma"]), "output_dir": str(tmp_path / "output"),
        "data_backend_config": "multidatabackend.json", "max_train_steps": 3, "train_batch_size": 2, "lora_rank": 4,
        "lora_alpha": 4, "mixed_precision": "no", "validation_resolution": "64x64", "tokenizer_max_length": 32,
    }
    (tmp_path / "config.json").write_text(json.dumps(config, indent=2))
    assert main(["config", "check", str(tmp_path / "config.json")]) == 0
    resolved = json.loads(capsys.readouterr().out)["training"]
    assert resolved["model_family"] == "chroma" and resolved["base_model_precision"] == "int8-quanto"
    assert main(["run", str(tmp_path / "config.json"), "--stage", "ingest"]) == 0
    capsys.readouterr()
    assert main(["run", str(tmp_path / "config.json"), "--stage", "train"]) == 0
    trained = json.loads(capsys.readouterr().out)["train"]
    assert trained["details"]["family"] == "chroma" and trained["counts"]["steps"] == 3
    assert set(trained["details"]["exports"]) == {"diffusers_lora"}
