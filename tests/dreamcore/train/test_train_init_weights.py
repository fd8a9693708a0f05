"""init_weights: training starts from a previous run's export (LoRA, LyCORIS, full; local or s3), the
stage key holds its content not its path, misfits are refused by name, and resuming wins."""

from __future__ import annotations

import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from dreamcore.storage import ArtifactStore
from dreamcore.train.init_weights import InitWeightsError
from dreamcore.train.memory import InMemoryBatchSource
from dreamcore.train.plan import plan_training
from dreamcore.train.stage import train_key, train_stage, training_fields
from tests.conftest import torch_threads

LOCON = {"algo": "locon", "multiplier": 1.0, "linear_dim": 4, "linear_alpha": 2, "conv_dim": 2, "conv_alpha": 1,
         "apply_preset": {"target_module": ["Transformer2DModel", "ResnetBlock2D"]}}


@pytest.fixture(scope="module")
def previous_lora(tiny_models, sd_samples, tmp_path_factory):
    """A finished 2-step LoRA train stage: (store, result, its final trained tensors from the step-2 checkpoint)."""
    from dreamcore.config import TrainingConfig

    config = TrainingConfig(pretrained_model_name_or_path=str(tiny_models["sd"]), model_family="sd1x",
                            mixed_precision="no", max_train_steps=2, checkpointing_steps=2, train_batch_size=2,
                            lora_rank=4, learning_rate=5e-2, optimizer="adamw", seed=0)
    with torch_threads(1):
        store = ArtifactStore(str(tmp_path_factory.mktemp("previous-lora")))
        source = InMemoryBatchSource(sd_samples, config.train_batch_size, seed=0)
        result = train_stage(plan_training(config, {"latents": "digest-1"}), store, source, show_progress=False)
    final = load_file(store.path(f"train/{result.key}/checkpoints/step-00000002/trainable.safetensors"))
    return store, result, final


def _export_folder(store, result) -> str:
    return store.path(f"train/{result.key}/export/diffusers")


def _assert_same(state: dict, expected: dict) -> None:
    assert state.keys() == expected.keys()
    for name, tensor in expected.items():
        assert torch.equal(state[name], tensor), name


def test_lora_starts_from_the_exported_folder_or_file(previous_lora, make_config, make_trainer, sd_samples):
    store, result, final = previous_lora
    folder = _export_folder(store, result)
    fresh = make_trainer(make_config(), sd_samples).adapter.trainable_state()
    assert any(not torch.equal(fresh[k], final[k]) for k in final)  # the check below can fail

    for location in (folder, f"{folder}/pytorch_lora_weights.safetensors"):
        trainer = make_trainer(make_config(init_weights=location), sd_samples, folder=f"train/{len(location)}")
        _assert_same(trainer.adapter.trainable_state(), final)  # every tensor, exactly, as trained
        assert trainer.train().history[0]["step"] == 1  # and it trains on from there


def test_lora_starts_from_an_s3_export(previous_lora, make_config, make_trainer, sd_samples, s3_root):
    store, result, final = previous_lora
    remote = ArtifactStore(s3_root)
    folder = f"train/{result.key}/export/diffusers"
    remote.write_bytes(f"{folder}/pytorch_lora_weights.safetensors",
                       store.read_bytes(f"{folder}/pytorch_lora_weights.safetensors"))
    config = make_config(init_weights=remote.uri(folder))
    _assert_same(make_trainer(config, sd_samples).adapter.trainable_state(), final)
    local = make_config(init_weights=_export_folder(store, result))
    assert training_fields(config)["init_weights"] == training_fields(local)["init_weights"]


def test_stage_key_holds_the_content_digest_not_the_path(previous_lora, make_config, tmp_path):
    store, result, _ = previous_lora
    copy = shutil.copytree(_export_folder(store, result), tmp_path / "moved")
    upstream = {"latents": "digest-1"}
    original, moved = make_config(init_weights=_export_folder(store, result)), make_config(init_weights=str(copy))
    assert train_key(original, upstream) == train_key(moved, upstream)
    assert train_key(original, upstream) != train_key(make_config(), upstream)
    assert "init_weights" not in training_fields(make_config())  # keys of runs without it are unchanged

    file = copy / "pytorch_lora_weights.safetensors"
    weights = load_file(str(file))
    name = min(weights)
    weights[name] = weights[name] + 1.0
    save_file(weights, str(file))
    assert train_key(moved, upstream) != train_key(original, upstream)


def test_missing_init_weights_name_the_setting_and_the_path(make_config, make_trainer, sd_samples, tmp_path):
    missing = str(tmp_path / "nowhere")
    with pytest.raises(InitWeightsError, match=f"init_weights {missing}: no such file"):
        training_fields(make_config(init_weights=missing))
    (tmp_path / "empty").mkdir()
    with pytest.raises(InitWeightsError, match="holds no pytorch_lora_weights.safetensors"):
        make_trainer(make_config(init_weights=str(tmp_path / "empty")), sd_samples)


def test_weights_that_do_not_fit_are_refused(previous_lora, make_config, make_trainer, sd_samples, tmp_path):
    store, result, _ = previous_lora
    folder = _export_folder(store, result)
    with pytest.raises(InitWeightsError, match=r"shape \(4, .*needs \(8, .*lora_rank"):
        make_trainer(make_config(init_weights=folder, lora_rank=8), sd_samples)
    with pytest.raises(InitWeightsError, match="missing .*unexpected .*same target modules"):
        make_trainer(make_config(init_weights=folder, peft_lora_target_modules=["to_q", "to_v"]), sd_samples)
    foreign = tmp_path / "foreign.safetensors"
    save_file({"unet.not_a_layer.lora.down.weight": torch.zeros(4, 8)}, str(foreign))
    with pytest.raises(InitWeightsError, match=f"init_weights {foreign}: none of its 1 tensors match"):
        make_trainer(make_config(init_weights=str(foreign)), sd_samples)


def test_a_resumed_run_continues_its_own_checkpoint(previous_lora, make_config, make_trainer, sd_samples, tmp_path):
    store, result, final = previous_lora
    own = ArtifactStore(str(tmp_path / "own"))
    first = make_trainer(make_config(max_train_steps=2), sd_samples, store=own, folder="train/run")
    first.train()
    checkpoint = first.adapter.trainable_state()
    resumed = make_trainer(make_config(max_train_steps=2, init_weights=_export_folder(store, result)), sd_samples,
                           store=own, folder="train/run")
    outcome = resumed.train()
    assert outcome.resumed_from == 2 and outcome.steps_run == 0
    _assert_same(resumed.adapter.trainable_state(), checkpoint)
    assert any(not torch.equal(checkpoint[k], final[k]) for k in final)


def test_lycoris_starts_from_a_weights_file(make_config, make_trainer, sd_samples, lycoris_file, tmp_path):
    config = make_config(lora_type="lycoris", lycoris_config=lycoris_file(LOCON))
    earlier = make_trainer(config, sd_samples, folder="train/earlier")
    with torch.no_grad():
        for p in earlier.adapter.trainable_parameters():
            p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(3)) * 0.1)
    file = tmp_path / "lycoris.safetensors"
    earlier.adapter.network.save_weights(str(file), torch.float32, {})
    started = make_trainer(config.model_copy(update={"init_weights": str(tmp_path)}), sd_samples, folder="train/b")
    _assert_same(started.adapter.trainable_state(), earlier.adapter.trainable_state())
    other_rank = lycoris_file(LOCON | {"linear_dim": 2}, name="rank2.json")
    with pytest.raises(InitWeightsError, match="shape"):
        make_trainer(make_config(lora_type="lycoris", lycoris_config=other_rank, init_weights=str(file)), sd_samples)


def test_full_fine_tune_starts_from_a_unet_or_pipeline_folder(make_config, make_trainer, sd_samples, tmp_path,
                                                              tiny_models):
    from diffusers import UNet2DConditionModel

    unet = UNet2DConditionModel.from_pretrained(tiny_models["sd"], subfolder="unet")
    with torch.no_grad():
        for p in unet.parameters():
            p.add_(0.01)
    unet.save_pretrained(tmp_path / "pipeline" / "unet")
    for location in (tmp_path / "pipeline", tmp_path / "pipeline" / "unet"):
        trainer = make_trainer(make_config(model_type="full", init_weights=str(location)), sd_samples,
                               folder=f"train/{location.name}")
        _assert_same(trainer.adapter.trainable_state(), {k: v for k, v in unet.state_dict().items()})
        base = trainer.adapter.reference_unet.state_dict()  # the prior target stays the base model
        assert not torch.equal(base["conv_in.weight"], unet.state_dict()["conv_in.weight"])
    with pytest.raises(InitWeightsError, match="not a single file"):
        training_fields(make_config(model_type="full", init_weights=str(tmp_path / "pipeline" / "unet" /
                                                                        "config.json")))
