"""continue_from_previous: which of the last run's exports a new training starts from."""

from __future__ import annotations

import pytest

from dreamcore.config import RunConfig, TrainingConfig
from dreamcore.retrain import continued, previous_weights

EXPORTS = {"diffusers_lora": "s3://bucket/runs/train/k1/export/diffusers",
           "kohya_lora": "s3://bucket/runs/train/k1/export/kohya"}


def _record(adapter="lora", exports=EXPORTS) -> dict:
    return {"ingest": {}, "train": {"stage": "train", "key": "k1", "details": {"adapter": adapter, "exports": exports}}}


def _training(**values) -> TrainingConfig:
    return TrainingConfig(pretrained_model_name_or_path="/models/sd", **values)


def test_a_lora_run_continues_from_the_diffusers_export():
    assert previous_weights(_record(), _training()) == EXPORTS["diffusers_lora"]


def test_lycoris_and_full_runs_continue_from_their_own_exports():
    lycoris = _record("lycoris", {"lycoris": "/runs/train/k2/export/lycoris"})
    assert previous_weights(lycoris, _training(lora_type="lycoris", lycoris_config="/cfg/lycoris.json")) == "/runs/train/k2/export/lycoris"
    full = _record("full", {"pipeline": "/runs/train/k3/export/pipeline"})
    assert previous_weights(full, _training(model_type="full")) == "/runs/train/k3/export/pipeline"


def test_no_recorded_training_starts_afresh():
    assert previous_weights(None, _training()) is None
    assert previous_weights({"ingest": {}}, _training()) is None


def test_another_adapter_kind_or_a_missing_export_is_refused():
    with pytest.raises(ValueError, match="trained a lora adapter but this config trains full"):
        previous_weights(_record(), _training(model_type="full"))
    with pytest.raises(ValueError, match=r"lists no diffusers_lora export \(exports: \['kohya_lora'\]\)"):
        previous_weights(_record(exports={"kohya_lora": "x"}), _training())


def test_continued_sets_init_weights_and_leaves_the_rest():
    config = RunConfig(training=_training(init_weights="/mine/start.safetensors", max_train_steps=7),
                       datasets=[{"id": "subject", "type": "local", "instance_data_dir": "/data/subject"}])
    started = continued(config, _record())
    assert started.training.init_weights == EXPORTS["diffusers_lora"]
    assert started.training.max_train_steps == 7 and config.training.init_weights == "/mine/start.safetensors"
    assert continued(config, None) is config  # the first run of a series keeps the configured init_weights
