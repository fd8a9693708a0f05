"""A SimpleTuner-style Flux.2 config (written like its FLUX2 quickstart: tests/fixtures/simpletuner/examples/
st-flux2-quickstart.json) passes `dreamcore config check` and trains on the tiny Flux.2; its flavours name the
hub ids; custom text-encoder layers are refused by key."""

from __future__ import annotations

import json

import pytest

from dreamcore.config import ConfigError, load_config
from tests.dreamcore.published_examples import EXAMPLES, check_then_train

EXAMPLE = EXAMPLES / "st-flux2-quickstart.json"


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
    # The quickstart's config on the tiny model, a few steps at 64 px on the CPU with a short caption length.
    resolved, trained = check_then_train(EXAMPLE, tiny_models["flux2"], tmp_path, capsys, tokenizer_max_length=32)
    assert resolved["model_family"] == "flux2" and resolved["base_model_precision"] == "int8-quanto"
    assert trained["details"]["family"] == "flux2" and trained["counts"]["steps"] == 3
    assert set(trained["details"]["exports"]) == {"diffusers_lora"}
