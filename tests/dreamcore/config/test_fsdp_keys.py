"""SimpleTuner's FSDP keys: written as its configs write them they load as fields; what FSDP training cannot do is
refused by key; FSDP1, DeepSpeed and a single process are refused with the reason."""

from __future__ import annotations

import json

import pytest

from dreamcore.config.loader import ConfigError, load_config

# As SimpleTuner's docs and its argument parser spell them (strings included: it upper-cases and splits them).
SIMPLETUNER_FSDP = {
    "--num_processes": 2, "--fsdp_enable": True, "--fsdp_version": "2", "--fsdp_reshard_after_forward": False,
    "--fsdp_state_dict_type": "full_state_dict", "--fsdp_auto_wrap_policy": "transformer_based_wrap",
    "--fsdp_transformer_layer_cls_to_wrap": "FluxTransformerBlock, FluxSingleTransformerBlock",
    "--fsdp_activation_checkpointing": True, "--fsdp_cpu_offload": True, "--fsdp_limit_all_gathers": True,
    "--fsdp_cpu_ram_efficient_loading": True,
}


def _load(tmp_path, values: dict):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(values))
    return load_config(path)


def test_simpletuner_fsdp_keys_load_as_fields(tmp_path):
    loaded = _load(tmp_path, SIMPLETUNER_FSDP)
    assert not loaded.warnings
    training = loaded.training
    assert training.fsdp_enable and training.fsdp_version == 2 and not training.fsdp_reshard_after_forward
    assert training.fsdp_state_dict_type == "FULL_STATE_DICT"
    assert training.fsdp_auto_wrap_policy == "TRANSFORMER_BASED_WRAP"
    assert training.fsdp_transformer_layer_cls_to_wrap == ["FluxTransformerBlock", "FluxSingleTransformerBlock"]
    assert training.fsdp_activation_checkpointing and training.fsdp_cpu_offload
    # FSDP1 / accelerate knobs that cannot change the weights: reported and dropped.
    assert sorted(n.split("'")[1] for n in loaded.notices) == ["fsdp_cpu_ram_efficient_loading",
                                                              "fsdp_limit_all_gathers"]


def _problems(tmp_path, values: dict) -> str:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, values)
    return str(caught.value)


@pytest.mark.parametrize(("extra", "message"), [
    ({"--fsdp_version": 1}, "fsdp_version 1 (FSDP1, deprecated in torch) is not implemented"),
    ({"--num_processes": 1}, "num_processes x num_machines >= 2"),
    ({"--use_ema": True}, "use_ema (the EMA copy lives on the main process)"),
    ({"--validation_steps": 10}, "validation_steps (in-training validation runs on the main process)"),
    ({"--lora_type": "lycoris", "--lycoris_config": "lycoris.json"}, "lora_type 'lycoris'"),
    ({"--base_model_precision": "int8-quanto"}, "base_model_precision 'int8-quanto'"),
    ({"--fsdp_auto_wrap_policy": "SIZE_BASED_WRAP"}, "TRANSFORMER_BASED_WRAP"),
])
def test_what_fsdp_training_cannot_do_is_refused_by_key(tmp_path, extra, message):
    assert message in _problems(tmp_path, {"--fsdp_enable": True, "--num_processes": 2} | extra)


def test_deepspeed_is_refused_with_its_reason(tmp_path):
    assert "DeepSpeed is not installed" in _problems(tmp_path, {"--deepspeed_config": "ds.json"})
