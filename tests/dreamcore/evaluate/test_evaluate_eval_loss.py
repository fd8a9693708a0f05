"""Stable eval loss: the same weights give the same number; one training step changes it."""

from __future__ import annotations

import pytest
import torch

from dreamcore.config import TrainingConfig
from dreamcore.evaluate.eval_loss import compute_eval_loss, eval_timesteps
from dreamcore.train.memory import collate, demo_samples


@pytest.fixture(scope="module")
def samples(tiny_models, tmp_path_factory):
    return demo_samples(tiny_models["sd"], tmp_path_factory.mktemp("eval-loss"), subjects=3, regularisation=0)


@pytest.fixture
def lora_model(tiny_models):
    from dreamcore.train.adapters import build_adapter
    from dreamcore.train.base import load_base

    config = TrainingConfig(pretrained_model_name_or_path=str(tiny_models["sd"]), model_family="sd1x",
                            mixed_precision="no", lora_rank=4)
    base = load_base(config, "cpu")
    adapter = build_adapter(config, base.unet)
    return base, adapter


def test_same_weights_same_loss_and_a_training_step_changes_it(samples, lora_model) -> None:
    base, adapter = lora_model
    batches = [collate(samples[:2]), collate(samples[2:])]
    timesteps = eval_timesteps(4, base.noise_scheduler.config.num_train_timesteps)
    first = compute_eval_loss(base.unet, base.noise_scheduler, base.prediction_type, batches, timesteps, seed=5)
    base.unet.train()  # dropout or not, eval runs in eval mode and restores the flag
    second = compute_eval_loss(base.unet, base.noise_scheduler, base.prediction_type, batches, timesteps, seed=5)
    assert base.unet.training
    assert first == second
    assert first.samples == 3 and sorted(first.per_timestep) == timesteps
    assert first.mean == pytest.approx(sum(first.per_timestep.values()) / len(timesteps))

    optimizer = torch.optim.SGD(adapter.trainable_parameters(), lr=1.0)
    batch = collate(samples[:2])
    noise = torch.randn(batch.latents.shape, generator=torch.Generator().manual_seed(0))
    t = torch.tensor([500, 500])
    noisy = base.noise_scheduler.add_noise(batch.latents, noise, t)
    loss = torch.nn.functional.mse_loss(base.unet(noisy, t, encoder_hidden_states=batch.prompt_embeds).sample, noise)
    loss.backward()
    optimizer.step()
    after = compute_eval_loss(base.unet, base.noise_scheduler, base.prediction_type, batches, timesteps, seed=5)
    assert after.mean != first.mean
    assert all(after.per_timestep[t] != first.per_timestep[t] for t in timesteps)
    other_noise = compute_eval_loss(base.unet, base.noise_scheduler, base.prediction_type, batches, timesteps, seed=6)
    assert other_noise.mean != after.mean  # the seed really fixes the noise


def test_eval_timesteps_spread_or_listed() -> None:
    assert eval_timesteps(4, 1000) == [125, 375, 625, 875]
    assert eval_timesteps(2000, 10) == list(range(10))
    assert eval_timesteps([900, 10, 10], 1000) == [10, 900]
    with pytest.raises(ValueError, match="outside the schedule"):
        eval_timesteps([1000], 1000)


def test_no_samples_is_a_clear_error(lora_model) -> None:
    base, _ = lora_model
    with pytest.raises(ValueError, match="dataset_type 'eval'"):
        compute_eval_loss(base.unet, base.noise_scheduler, base.prediction_type, [], [1])
