"""A SimpleTuner-style Qwen-Image config (its published example's keys: tests/fixtures/simpletuner/examples/
st-qwen_image.peft-lora.json) passes `dreamcore config check` and trains on the tiny Qwen-Image; its flavours name
the hub ids, and the edit flavours are refused by key."""

from __future__ import annotations

import json

import pytest

from dreamcore.config import ConfigError, TrainingConfig, load_config
from tests.dreamcore.published_examples import EXAMPLES, check_then_train

EXAMPLE = EXAMPLES / "st-qwen_image.peft-lora.json"


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
    resolved, trained = check_then_train(EXAMPLE, tiny_models["qwen_image"], tmp_path, capsys, resolution=64,
                                         resolution_type="pixel")
    assert resolved["model_family"] == "qwen_image" and resolved["base_model_precision"] == "int2-quanto"
    assert resolved["flow_schedule_shift"] == 1.73
    assert trained["details"]["family"] == "qwen_image"
    assert set(trained["details"]["exports"]) == {"diffusers_lora"}
