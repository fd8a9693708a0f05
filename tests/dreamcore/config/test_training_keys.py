"""SimpleTuner's loss, optimizer, schedule, caption-dropout and validation keys load as fields (no unknown-key
warnings) with its defaults; controlnet is refused with a reason."""

from __future__ import annotations

import json

import pytest

from dreamcore.config import TrainingConfig
from dreamcore.config.loader import ConfigError, load_config

NEW_KEYS = {
    "--caption_dropout_probability": 0.1, "--loss_type": "huber", "--huber_schedule": "exponential",
    "--huber_c": 0.2, "--optimizer": "optimi-lion", "--optimizer_config": "weight_decay=0.1",
    "--lr_scheduler": "polynomial", "--lr_end": 1e-6, "--lr_power": 2.0, "--validation_guidance_rescale": 0.7,
    "--validation_resolution": "1024x1024,1280x768", "--flux_attention_masked_training": True,
    "--sd3_clip_uncond_behaviour": "zero", "--sd3_t5_uncond_behaviour": "empty_string",
}


def test_simpletuner_training_keys_load_without_warnings(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(NEW_KEYS))
    loaded = load_config(path)
    assert not loaded.warnings
    training = loaded.training
    for key, value in NEW_KEYS.items():
        assert getattr(training, key.removeprefix("--")) == value, key


def test_a_datasets_caption_dropout_probability_is_a_field(tmp_path):
    (tmp_path / "datasets.json").write_text(json.dumps([
        {"id": "subject", "instance_data_dir": str(tmp_path), "caption_dropout_probability": 0.25},
        {"id": "other", "instance_data_dir": str(tmp_path)}]))
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"--caption_dropout_probability": 0.05, "--data_backend_config": "datasets.json",
                                "--pretrained_model_name_or_path": str(tmp_path / "model")}))
    loaded = load_config(path)
    assert not loaded.warnings
    config = loaded.run_config()
    assert config.caption_dropout(config.dataset("subject")) == 0.25
    assert config.caption_dropout(config.dataset("other")) == 0.05 and config.uses_caption_dropout


def test_defaults_leave_training_as_it_was():
    config = TrainingConfig()
    assert (config.loss_type, config.huber_schedule, config.huber_c) == ("l2", "snr", 0.1)
    assert config.caption_dropout_probability == 0.0 and config.validation_guidance_rescale == 0.0
    assert config.sd3_t5_uncond_behaviour is None and not config.flux_attention_masked_training
    assert config.lr_end == 4e-7 and config.optimizer_config is None


def test_controlnet_is_refused_with_the_reason(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"--controlnet": True}))
    with pytest.raises(ConfigError, match="'controlnet'.*ControlNet training is a different kind of training"):
        load_config(path)


@pytest.mark.parametrize(("key", "value", "message"), [
    ("loss_type", "l1", "loss_type"), ("huber_c", 0.0, "huber_c"), ("caption_dropout_probability", 1.5,
                                                                      "caption_dropout_probability"),
    ("validation_guidance_rescale", 2.0, "validation_guidance_rescale"), ("lr_scheduler", "sine", "lr_warmup_steps"),
])
def test_bad_values_name_the_key(tmp_path, key, value, message):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({key: value}))
    with pytest.raises(ConfigError, match=message):
        load_config(path)
