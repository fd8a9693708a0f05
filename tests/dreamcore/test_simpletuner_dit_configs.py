"""SimpleTuner-style Chroma and Lumina2 configs (their published examples, tests/fixtures/simpletuner/examples/
st-<family>.peft-lora.json) pass `dreamcore config check` and train on the family's tiny model; their flavours name
SimpleTuner's hub ids (the default one when the example names none)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dreamcore.cli import main
from dreamcore.config import TrainingConfig, load_config
from dreamcore.data.demo import write_demo_dataset

EXAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "simpletuner" / "examples"
# family -> (its default flavour's hub id, {other flavour: hub id})
FLAVOURS = {
    "chroma": ("lodestones/Chroma1-Base", {"hd": "lodestones/Chroma1-HD", "flash": "lodestones/Chroma1-Flash"}),
    "lumina2": ("Alpha-VLLM/Lumina-Image-2.0", {"neta-lumina": "terminusresearch/neta-lumina-v1"}),
}


@pytest.mark.parametrize("family", sorted(FLAVOURS))
def test_the_flavours_name_simpletuners_hub_ids(family) -> None:
    loaded = load_config(EXAMPLES / f"st-{family}.peft-lora.json")
    default, others = FLAVOURS[family]
    assert loaded.training.model_family == family and loaded.training.pretrained_model_name_or_path == default
    for flavour, hub_id in others.items():
        assert TrainingConfig(model_family=family, model_flavour=flavour).pretrained_model_name_or_path == hub_id


@pytest.mark.parametrize("family", sorted(FLAVOURS))
def test_config_check_then_train(family, tmp_path, capsys, tiny_models) -> None:
    data = write_demo_dataset(tmp_path / "data", n_images=4)
    backend = [
        {"id": "subject", "type": "local", "instance_data_dir": str(data.images_dir), "caption_strategy": "textfile",
         "resolution": 64, "resolution_type": "pixel", "minimum_image_size": 64, "repeats": 1},
        {"id": "text-embeds", "type": "local", "dataset_type": "text_embeds", "default": True},
    ]
    (tmp_path / "multidatabackend.json").write_text(json.dumps(backend, indent=2))
    # The example as published, on the tiny model and a few steps at 64 px on the CPU, 64 text tokens.
    config = json.loads((EXAMPLES / f"st-{family}.peft-lora.json").read_text()) | {
        "pretrained_model_name_or_path": str(tiny_models[family]), "output_dir": str(tmp_path / "output"),
        "data_backend_config": "multidatabackend.json", "max_train_steps": 3, "train_batch_size": 2, "lora_rank": 4,
        "lora_alpha": 4, "mixed_precision": "no", "validation_resolution": "64x64", "tokenizer_max_length": 64,
    }
    (tmp_path / "config.json").write_text(json.dumps(config, indent=2))
    assert main(["config", "check", str(tmp_path / "config.json")]) == 0
    resolved = json.loads(capsys.readouterr().out)["training"]
    assert resolved["model_family"] == family and resolved["base_model_precision"] == "int8-quanto"
    assert main(["run", str(tmp_path / "config.json"), "--stage", "ingest"]) == 0
    capsys.readouterr()
    assert main(["run", str(tmp_path / "config.json"), "--stage", "train"]) == 0
    trained = json.loads(capsys.readouterr().out)["train"]
    assert trained["details"]["family"] == family and trained["counts"]["steps"] == 3
    assert set(trained["details"]["exports"]) == {"diffusers_lora"}
