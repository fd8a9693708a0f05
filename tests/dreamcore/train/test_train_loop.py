"""The loop: it learns, prior preservation targets the base, resume is exact, checkpoints and EMA behave."""

from __future__ import annotations

import pytest
import torch

from dreamcore.storage import ArtifactStore
from dreamcore.train import checkpoints as ckpt
from dreamcore.train.memory import collate


def _fixed_loss(trainer, batch, draws: int = 6) -> float:
    """Mean loss over the same noise/timestep draws every time (a fair before/after comparison)."""
    trainer.noise.manual_seed(1234)
    with torch.no_grad():
        return sum(float(trainer.loss(batch).total) for _ in range(draws)) / draws


@pytest.mark.parametrize(("overrides", "at_most"), [
    ({"model_type": "full", "learning_rate": 1e-3, "max_train_steps": 20}, 0.5),
    # The tiny UNet's attention carries little of its output, so an attention-only LoRA moves it less.
    ({"learning_rate": 1e-2, "lora_rank": 8, "max_train_steps": 25}, 0.95),
], ids=["full", "lora"])
def test_loss_falls_when_overfitting_a_tiny_dataset(overrides, at_most, make_config, make_trainer, sd_samples):
    subject = sd_samples[:2]
    trainer = make_trainer(make_config(checkpointing_steps=1000, **overrides), subject)
    before = _fixed_loss(trainer, collate(subject))
    history = trainer.train().history
    after = _fixed_loss(trainer, collate(subject))
    assert after < at_most * before, (before, after)
    assert len(history) == overrides["max_train_steps"] and all(e["loss"] > 0 for e in history)


def test_prior_preservation_target_is_the_base_prediction(make_config, make_trainer, sd_samples, tiny_models):
    from diffusers import UNet2DConditionModel

    trainer = make_trainer(make_config(prior_loss_weight=0.5), sd_samples)
    with torch.no_grad():
        for p in trainer.params:  # make the adapter matter, so "base" and "adapted" differ
            p.add_(0.1)
    batch = collate([sd_samples[0], sd_samples[4]])  # one subject, one regularisation sample
    assert batch.is_regularisation.tolist() == [False, True]
    noisy, noise = torch.randn(2, 4, 32, 32), torch.randn(2, 4, 32, 32)
    timesteps = torch.tensor([300, 300])
    target = trainer.prior_targets(noise, noisy, timesteps, batch)
    base_unet = UNet2DConditionModel.from_pretrained(tiny_models["sd"], subfolder="unet")
    with torch.no_grad():
        base = base_unet(noisy, timesteps, batch.prompt_embeds).sample
        adapted = trainer.base.unet(noisy, timesteps, batch.prompt_embeds).sample
    assert torch.equal(target[0], noise[0])  # subject: the true noise
    assert (target[1] - base[1]).abs().max() < 1e-5, (target[1] - base[1]).abs().max()  # regularisation: the base model's own prediction
    assert not torch.allclose(target[1], adapted[1], atol=1e-3)
    parts = trainer.loss(batch)
    assert parts.subject_count == 1 and parts.regularisation_count == 1
    assert parts.regularisation is not None and parts.subject is not None


def test_class_image_prior_loss_uses_the_true_noise(make_config, make_trainer, sd_samples):
    trainer = make_trainer(make_config(prior_preservation_target="noise"), sd_samples)
    batch = collate([sd_samples[0], sd_samples[5]])
    noise = torch.randn(2, 4, 32, 32)
    target = trainer.prior_targets(noise, torch.randn(2, 4, 32, 32), torch.tensor([10, 900]), batch)
    assert torch.equal(target, noise)


def test_n_straight_steps_equal_half_then_resume_then_half(make_config, make_trainer, sd_samples, tmp_path,
                                                           crash_and_resume, assert_resumed_exactly):
    """A crash after step 3 with checkpoints every 2 resumes at 2 and ends bit-for-bit (within fp noise) equal."""
    config = make_config(max_train_steps=4, checkpointing_steps=2, lora_dropout=0.1, use_ema=True,
                         lr_scheduler="cosine", lr_warmup_steps=1, gradient_accumulation_steps=2,
                         scheduled_sampling_max_step_offset=2, scheduled_sampling_probability=0.5)
    straight = make_trainer(config, sd_samples, store=ArtifactStore(str(tmp_path / "a")))
    straight_outcome = straight.train()
    resumed, outcome = crash_and_resume(config, sd_samples)
    assert_resumed_exactly(straight, straight_outcome, resumed, outcome)
    assert resumed.batches.state_dict() == straight.batches.state_dict()


def test_ema_weights_differ_from_raw_and_stay_on_the_cpu(make_config, make_trainer, sd_samples):
    trainer = make_trainer(make_config(max_train_steps=3, use_ema=True, ema_decay=0.9, ema_device="cpu",
                                       learning_rate=1e-2), sd_samples)
    trainer.train()
    raw, ema = trainer.adapter.trainable_state(), trainer.ema.shadow_state()
    assert all(t.device.type == "cpu" for t in trainer.ema.model.shadow_params)
    assert any(not torch.allclose(raw[name], ema[name]) for name in raw)
    assert trainer.ema.model.optimization_step == 3
    with trainer.ema.applied():
        assert all(torch.equal(trainer.adapter.trainable_state()[n], ema[n]) for n in ema)
    assert all(torch.equal(trainer.adapter.trainable_state()[n], raw[n]) for n in raw)


def test_checkpoints_keep_the_last_k_and_ignore_incomplete_ones(tmp_path):
    store = ArtifactStore(str(tmp_path / "store"))
    for step in (2, 4, 6):
        ckpt.save_checkpoint(store, "train/k", ckpt.Checkpoint(step, {"w": torch.full((2,), float(step))}, {},
                                                               {"rng": []}, {"history": []}), keep_last=2)
    assert ckpt.checkpoint_steps(store, "train/k") == [4, 6]
    store.remove(f"train/k/checkpoints/step-{6:08d}/{ckpt.COMPLETE_MARKER}")  # a crash mid-save of step 6
    latest = ckpt.latest_checkpoint(store, "train/k")
    assert latest.step == 4 and torch.equal(latest.trainable["w"], torch.full((2,), 4.0))
    ckpt.save_checkpoint(store, "train/k", ckpt.Checkpoint(8, {"w": torch.zeros(2)}, {}, {}, {}), keep_last=2)
    assert [p.rsplit("/", 1)[-1] for p in store.list("train/k/checkpoints")] == ["step-00000004", "step-00000008"]


def test_sdxl_trains_with_added_conditioning_from_the_batch(tiny_models, make_config, make_trainer, tmp_path):
    from dataclasses import replace

    from dreamcore.train.memory import demo_samples

    samples = demo_samples(tiny_models["sdxl"], tmp_path / "demo-xl", subjects=2, regularisation=0, masks=False)
    assert samples[0].time_ids.tolist() == [[96.0, 96.0, 0.0, 0.0, 64.0, 64.0]]
    config = make_config(pretrained_model_name_or_path=str(tiny_models["sdxl"]), model_family="sdxl",
                         max_train_steps=2, snr_gamma=5.0)
    trainer = make_trainer(config, samples)
    assert trainer.base.family.name == "sdxl"
    assert len(trainer.train().history) == 2
    with pytest.raises(ValueError, match="need pooled_prompt_embeds and time_ids"):
        trainer.loss(replace(collate(samples), time_ids=None))


def test_gradient_checkpointing_gives_the_same_weights(make_config, make_trainer, sd_samples, tmp_path):
    plain = make_trainer(make_config(max_train_steps=2, prediction_type="v_prediction"), sd_samples,
                         store=ArtifactStore(str(tmp_path / "a")))
    plain.train()
    checkpointed = make_trainer(make_config(max_train_steps=2, prediction_type="v_prediction",
                                            gradient_checkpointing=True), sd_samples,
                                store=ArtifactStore(str(tmp_path / "b")))
    assert checkpointed.base.unet.is_gradient_checkpointing and checkpointed.base.prediction_type == "v_prediction"
    checkpointed.train()
    a, b = plain.adapter.trainable_state(), checkpointed.adapter.trainable_state()
    assert all(torch.allclose(a[n], b[n], atol=1e-6) for n in a)
