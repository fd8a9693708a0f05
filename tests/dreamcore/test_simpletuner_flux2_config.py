"""A SimpleTuner-style Flux.2 config (written like its FLUX2 quickstart: tests/fixtures/simpletuner/examples/
st-flux2-quickstart.json) passes `dreamcore config check` and trains on the tiny Flux.2; its flavours name the
hub ids; edit (reference-image) conditioning and custom text-encoder layers are refused by key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dreamcore.cli import main
from dreamcore.config import ConfigError, load_config
from dreamcore.data.demo import write_demo_dataset

EXAMPLE = Path(__file__).resolve().parents[1] / "fixtures" / "simpletuner" / "examples" / "st-flux2-quickstart.json"


def test_the_flavours_name_flux2_hub_ids(tmp_path) -> None:
    loaded = load_config(EXAMPLE)
    assert loaded.training.model_family == "flux2"
    assert loaded.training.pretrained_model_name_or_path == "black-forest-labs/FLUX.2-klein-base-4B"
    for flavour, hub_id in {None: "black-forest-labs/FLUX.2-klein-base-9B",
                            "dev": "black-forest-labs/FLUX.2-dev"}.items():
        config = tmp_path / f"{flavour}.json"
        config.write_text(json.dumps({"model_family": "flux2"} | ({"model_flavour": flavour} if flavour else {})))
        assert load_config(config).training.pretrained_model_name_or_path == hub_id


def test_custom_encoder_layers_are_refused(tmp_path) -> None:
    """(Reference datasets for a model that is no edit model, Flux.2 included, are refused before caching, naming
    the dataset: tests/dreamcore/cache/test_cache_references.py.)"""
    (tmp_path / "layers.json").write_text(json.dumps({"model_family": "flux2",
                                                      "custom_text_encoder_intermediary_layers": "[8, 16, 24]"}))
    with pytest.raises(ConfigError, match="custom_text_encoder_intermediary_layers.*refused"):
        load_config(tmp_path / "layers.json")


def test_config_check_then_train(tmp_path, capsys, tiny_models) -> None:
    data = write_demo_dataset(tmp_path / "data", n_images=4)
    backend = [
        {"id": "subject", "type": "local", "instance_data_dir": str(data.images_dir), "caption_strategy": "textfile",
         "resolution": 64, "resolution_type": "pixel", "minimum_image_size": 64, "repeats": 1},
        {"id": "text-embeds", "type": "local", "dataset_type": "text_embeds", "default": True},
    ]
    (tmp_path / "multidatabackend.json").write_text(json.dumps(backend, indent=2))
    # The quickstart's config on the tiny model, a few steps at 64 px on the CPU with a short caption length.
    config = json.loads(EXAMPLE.read_text()) | {
        "pretrained_model_name_or_path": str(tiny_models["flux2"]), "output_dir": str(tmp_path / "output"),
        "data_backend_config": "multidatabackend.json",
        "max_train_steps": 3, "train_batch_size": 2, "lora_rank": 4, "mixed_precision": "no",
        "validation_resolution": "64x64", "tokenizer_max_length": 32,
    }
    (tmp_path / "config.json").write_text(json.dumps(config, indent=2))
    assert main(["config", "check", str(tmp_path / "config.json")]) == 0
    resolved = json.loads(capsys.readouterr().out)["training"]
    assert resolved["model_family"] == "flux2" and resolved["base_model_precision"] == "int8-quanto"
    assert main(["run", str(tmp_path / "config.json"), "--stage", "ingest"]) == 0
    capsys.readouterr()
    assert main(["run", str(tmp_path / "config.json"), "--stage", "train"]) == 0
    trained = json.loads(capsys.readouterr().out)["train"]
    assert trained["details"]["family"] == "flux2" and trained["counts"]["steps"] == 3
    assert set(trained["details"]["exports"]) == {"diffusers_lora"}
