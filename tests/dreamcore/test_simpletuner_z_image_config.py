"""A SimpleTuner-style Z-Image Turbo config (its published example: tests/fixtures/simpletuner/examples/
st-z-image-turbo.peft-lora.json) is refused for what dreamcore does not do (SDNQ quantisation, the turbo assistant
LoRA), each by key; with those answered it passes `dreamcore config check` and trains on the tiny Z-Image."""

from __future__ import annotations

import json

import pytest

from dreamcore.config import ConfigError, load_config
from tests.dreamcore.published_examples import EXAMPLES, check_then_train

EXAMPLE = EXAMPLES / "st-z-image-turbo.peft-lora.json"
_SDNQ = {"base_model_precision": "int8-quanto", "sdnq_compile_mode": None, "sdnq_group_size": None,
         "sdnq_hadamard_group_size": None, "sdnq_use_hadamard": None, "sdnq_use_quantized_matmul": None}


def _without_sdnq(config: dict) -> dict:
    """The example with quanto's int8 in place of SDNQ's (dreamcore quantises through quanto, torchao, bnb)."""
    return {key: value for key, value in (config | _SDNQ).items() if value is not None}


def test_the_published_example_is_refused_by_key(tmp_path) -> None:
    with pytest.raises(ConfigError, match="sdnq_use_hadamard.*SDNQ quantisation is not supported"):
        load_config(EXAMPLE)
    quanto = tmp_path / "config.json"
    quanto.write_text(json.dumps(_without_sdnq(json.loads(EXAMPLE.read_text()))))
    with pytest.raises(ConfigError, match="model_flavour 'turbo'.*assistant LoRA.*disable_assistant_lora"):
        load_config(quanto)


@pytest.mark.parametrize(("flavour", "hub_id"), [(None, "TONGYI-MAI/Z-Image-Turbo"), ("base", "TONGYI-MAI/Z-Image")])
def test_flavours_name_the_hub_ids(tmp_path, flavour, hub_id) -> None:
    config = {"model_family": "z_image", "disable_assistant_lora": True}
    config |= {"model_flavour": flavour} if flavour else {}
    (tmp_path / "config.json").write_text(json.dumps(config))
    training = load_config(tmp_path / "config.json").training
    assert training.pretrained_model_name_or_path == hub_id and training.model_flavour == (flavour or "turbo-ostris-v2")


def test_de_turbo_needs_a_folder_holding_its_transformer(tmp_path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"model_family": "z_image", "model_flavour": "ostris-de-turbo"}))
    with pytest.raises(ConfigError, match="ostris/Z-Image-De-Turbo's transformer"):
        load_config(tmp_path / "config.json")


def test_config_check_then_train(tmp_path, capsys, tiny_models) -> None:
    # The example with SDNQ answered and the assistant LoRA off, on the tiny model: a few steps at 64 px on the CPU.
    resolved, trained = check_then_train(_without_sdnq(json.loads(EXAMPLE.read_text())), tiny_models["z_image"],
                                         tmp_path, capsys, disable_assistant_lora=True, lr_warmup_steps=1,
                                         resolution=64, resolution_type="pixel")
    assert resolved["model_family"] == "z_image" and resolved["model_flavour"] == "turbo"
    assert trained["details"]["family"] == "z_image" and trained["counts"]["steps"] == 3
    assert set(trained["details"]["exports"]) == {"diffusers_lora"}
