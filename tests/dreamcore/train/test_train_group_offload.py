"""Group offload while training (enable_group_offload, dreamcore/train/offload.py): through the real trainer on
the tiny SD model, offload of the frozen base to disk on CPU trains exactly what training without it trains
(every step's loss and the LoRA weights are equal), at block and at leaf level, with gradient checkpointing
too, and on the tiny Flux; the SimpleTuner keys pass `config check`; a full fine-tune is refused with the reason."""

from __future__ import annotations

import json

import pytest
import torch

from dreamcore.config import TrainingConfig


def _trained(make_config, make_trainer, samples, folder: str, **overrides) -> tuple[list[float], dict]:
    """Each training in its own folder: one would resume the other's final checkpoint."""
    trainer = make_trainer(make_config(checkpointing_steps=1000, max_train_steps=3, **overrides), samples,
                           folder=folder)
    history = trainer.train().history
    return [entry["loss"] for entry in history], trainer.adapter.trainable_state()


@pytest.mark.parametrize("offload", [
    {"group_offload_type": "block_level", "group_offload_blocks_per_group": 1},
    {"group_offload_type": "block_level", "group_offload_blocks_per_group": 2, "gradient_checkpointing": True},
    {"group_offload_type": "leaf_level"},
], ids=["block", "block-2-checkpointed", "leaf"])
def test_offload_to_disk_trains_exactly_what_training_without_it_trains(offload, make_config, make_trainer,
                                                                         sd_samples, tmp_path):
    same = {"gradient_checkpointing": offload.get("gradient_checkpointing", False)}
    plain_losses, plain_weights = _trained(make_config, make_trainer, sd_samples, "train/plain", **same)
    disk = tmp_path / "offload"
    losses, weights = _trained(make_config, make_trainer, sd_samples, "train/offloaded", enable_group_offload=True,
                               group_offload_to_disk_path=str(disk), **offload)
    assert losses == plain_losses and len(losses) == 3
    assert weights.keys() == plain_weights.keys()
    assert all(torch.equal(weights[name], plain_weights[name]) for name in weights)
    assert any(disk.rglob("*.safetensors"))  # the base really went to disk


@pytest.mark.parametrize("offload_type", ["block_level", "leaf_level"])
def test_offload_trains_flux_exactly(offload_type, make_dit_config, make_trainer, dit_samples, tmp_path):
    """Flux's double-stream blocks take image and text tokens that both need gradients: a group is offloaded only
    after the backward of both streams. The losses are equal; the LoRA weights after the last step differ by float
    rounding at most (measured: 6e-8; a group offloaded too early gives NaN)."""
    def make(**overrides):
        return make_dit_config("flux", checkpointing_steps=1000, max_train_steps=3, **overrides)

    def trained(config, folder):
        trainer = make_trainer(config, dit_samples["flux"], folder=folder)
        return [e["loss"] for e in trainer.train().history], trainer.adapter.trainable_state()

    plain_losses, plain_weights = trained(make(), "train/plain")
    losses, weights = trained(make(enable_group_offload=True, group_offload_type=offload_type,
                                   group_offload_to_disk_path=str(tmp_path)), "train/offloaded")
    assert losses == plain_losses
    assert all(torch.allclose(weights[name], plain_weights[name], rtol=0, atol=1e-6) for name in plain_weights)


def test_offload_keeps_the_adapter_out_of_the_groups(make_config, make_trainer, sd_samples, tmp_path):
    trainer = make_trainer(make_config(enable_group_offload=True, group_offload_to_disk_path=str(tmp_path)),
                           sd_samples)
    offloaded = {id(t) for group in trainer.offloading.groups for t in [*group.parameters, *group.buffers]}
    assert offloaded and not offloaded & {id(p) for p in trainer.params}
    assert all(not group.modules for group in trainer.offloading.groups)


def test_simpletuner_offload_keys_pass_config_check(tmp_path, capsys):
    from dreamcore.cli import main

    config = tmp_path / "config.json"
    config.write_text(json.dumps({
        "--model_family": "sdxl", "--model_type": "lora", "--enable_group_offload": True,
        "--group_offload_type": "block_level", "--group_offload_blocks_per_group": 2,
        "--group_offload_use_stream": False, "--group_offload_to_disk_path": str(tmp_path / "offload")}))
    assert main(["config", "check", str(config)]) == 0, capsys.readouterr().err


def test_offload_refuses_a_full_fine_tune_and_a_quantised_base() -> None:
    with pytest.raises(ValueError, match="a full fine-tune updates the weights the offloaded groups hold"):
        TrainingConfig(model_type="full", enable_group_offload=True)
    with pytest.raises(ValueError, match="the quantisers place the weights themselves"):
        TrainingConfig(base_model_precision="int8-quanto", enable_group_offload=True)
    with pytest.raises(ValueError, match="use one or the other"):
        TrainingConfig(enable_group_offload=True, fsdp_enable=True, num_processes=2)
    with pytest.raises(ValueError, match="group_offload_blocks_per_group 1"):
        TrainingConfig(enable_group_offload=True, group_offload_use_stream=True, group_offload_blocks_per_group=2)
