"""Quantised base (optimum-quanto) under peft LoRA and LyCORIS; clear errors where hardware is missing."""

from __future__ import annotations

import pytest
import torch

from dreamcore.train.base import QuantisationUnavailable, check_precision_available

LOKR = {"algo": "lokr", "linear_dim": 10000, "linear_alpha": 1, "factor": 4}


@pytest.mark.parametrize("adapter", ["lora", "lycoris"])
def test_int8_quanto_base_trains_through_an_adapter(adapter, make_config, make_trainer, sd_samples, lycoris_file):
    from optimum.quanto import QLinear

    overrides = {"lycoris": {"lora_type": "lycoris", "lycoris_config": lycoris_file(LOKR)}}.get(adapter, {})
    trainer = make_trainer(make_config(base_model_precision="int8-quanto", max_train_steps=2,
                                       learning_rate=1e-2, **overrides), sd_samples)
    assert any(isinstance(m, QLinear) for m in trainer.base.unet.modules())
    trained = {id(p) for p in trainer.params}
    assert not any(p.requires_grad for p in trainer.base.unet.parameters() if id(p) not in trained)
    before = trainer.adapter.trainable_state()
    history = trainer.train().history
    after = trainer.adapter.trainable_state()
    assert len(history) == 2 and all(torch.isfinite(torch.tensor(e["loss"])) for e in history)
    assert any(not torch.equal(before[n], after[n]) for n in before)
    assert trainer.adapter.wrapped_modules > 0


def test_int4_quanto_quantises_too(make_config, make_trainer, sd_samples):
    trainer = make_trainer(make_config(base_model_precision="int4-quanto", max_train_steps=1), sd_samples)
    assert trainer.train().history[0]["loss"] > 0


@pytest.mark.parametrize(("precision", "needs"), [("nf4-bnb", "a CUDA GPU"), ("fp8-torchao", "compute capability")])
def test_gpu_only_precisions_say_what_they_need(precision, needs):
    with pytest.raises(QuantisationUnavailable, match=needs) as error:
        check_precision_available(precision, "cpu")
    assert "int8-quanto" in str(error.value)  # and what to use instead


def test_full_fine_tune_of_a_quantised_base_is_refused(make_config):
    with pytest.raises(ValueError, match="needs model_type 'lora'"):
        make_config(model_type="full", base_model_precision="int8-quanto")
