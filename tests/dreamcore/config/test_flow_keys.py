"""SimpleTuner's flow-matching and Flux keys load as fields (no unknown-key warnings), with its defaults."""

from __future__ import annotations

import json

import pytest

from dreamcore.config import TrainingConfig
from dreamcore.config.loader import ConfigError, load_config


def test_a_simpletuner_flux_config_loads_without_unknown_keys(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({
        "--model_family": "flux", "--model_type": "lora", "--flux_lora_target": "all+ffs",
        "--flow_schedule_shift": 1.0, "--flow_schedule_auto_shift": True, "--flow_use_beta_schedule": True,
        "--flow_beta_schedule_alpha": 1.5, "--flux_guidance_mode": "random-range", "--flux_guidance_min": 1.0,
        "--flux_guidance_max": 3.0, "--sd3_clip_uncond_behaviour": "zero", "--base_model_precision": "int8-quanto",
    }))
    loaded = load_config(path)
    assert not loaded.warnings
    training = loaded.training
    assert training.flux_lora_target == "all+ffs" and training.flow_schedule_shift == 1.0
    assert training.flux_guidance_mode == "random-range" and training.flow_beta_schedule_alpha == 1.5


def test_simpletuner_defaults():
    config = TrainingConfig()
    assert (config.flow_schedule_shift, config.flow_sigmoid_scale, config.flow_beta_schedule_alpha,
            config.flow_beta_schedule_beta) == (3.0, 1.0, 2.0, 2.0)
    assert not (config.flow_schedule_auto_shift or config.flow_use_uniform_schedule or config.flow_use_beta_schedule)
    assert (config.flux_guidance_mode, config.flux_guidance_value, config.flux_guidance_min,
            config.flux_guidance_max) == ("constant", 1.0, 0.0, 4.0)
    assert config.flux_lora_target == "all" and config.sd3_clip_uncond_behaviour == "empty_string"


def test_a_reversed_guidance_range_is_refused(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"flux_guidance_mode": "random-range", "flux_guidance_min": 5, "flux_guidance_max": 1}))
    with pytest.raises(ConfigError, match="flux_guidance_min 5.0 is above flux_guidance_max 1.0"):
        load_config(path)
