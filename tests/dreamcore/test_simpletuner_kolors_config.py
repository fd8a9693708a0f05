"""A SimpleTuner-style Kolors config (its published example's keys: tests/fixtures/simpletuner/examples/
st-kolors.peft-lora.json) passes `dreamcore config check` and trains on the tiny Kolors; its flavour names the hub id."""

from __future__ import annotations

from dreamcore.config import load_config
from tests.dreamcore.published_examples import EXAMPLES, check_then_train

EXAMPLE = EXAMPLES / "st-kolors.peft-lora.json"


def test_the_examples_flavour_names_kolors_hub_id() -> None:
    loaded = load_config(EXAMPLE)
    assert loaded.training.model_family == "kolors"
    assert loaded.training.pretrained_model_name_or_path == "terminusresearch/kwai-kolors-1.0"


def test_config_check_then_train(tmp_path, capsys, tiny_models) -> None:
    resolved, trained = check_then_train(EXAMPLE, tiny_models["kolors"], tmp_path, capsys)
    assert resolved["model_family"] == "kolors" and resolved["base_model_precision"] == "int8-quanto"
    assert trained["details"]["family"] == "kolors"
    assert set(trained["details"]["exports"]) == {"diffusers_lora"}
