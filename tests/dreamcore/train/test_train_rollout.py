"""Scheduled sampling: the probability ramp (both directions) and the rollout samplers."""

from __future__ import annotations

import pytest
import torch

from dreamcore.train.rollout import draw_offsets, make_sampler, roll_forward, rollout_probability


@pytest.mark.parametrize(("start", "end"), [(0.0, 0.8), (0.9, 0.1)], ids=["up", "down"])
def test_rollout_ramp_at_steps_zero_half_and_end(start, end, make_config):
    config = make_config(scheduled_sampling_max_step_offset=5, scheduled_sampling_ramp_steps=100,
                         scheduled_sampling_prob_start=start, scheduled_sampling_prob_end=end,
                         scheduled_sampling_probability=0.5)
    assert rollout_probability(config, 0) == pytest.approx(start)
    assert rollout_probability(config, 50) == pytest.approx((start + end) / 2)
    assert rollout_probability(config, 100) == pytest.approx(end)
    assert rollout_probability(config, 1000) == pytest.approx(end)


def test_rollout_ramp_defaults_start_step_and_cosine(make_config):
    plain = make_config(scheduled_sampling_max_step_offset=5, scheduled_sampling_probability=0.6,
                        scheduled_sampling_ramp_steps=10)
    assert [rollout_probability(plain, s) for s in (0, 5, 10)] == pytest.approx([0.0, 0.3, 0.6])
    delayed = plain.model_copy(update={"scheduled_sampling_start_step": 20})
    assert [rollout_probability(delayed, s) for s in (0, 20, 25, 30)] == pytest.approx([0.0, 0.0, 0.3, 0.6])
    cosine = plain.model_copy(update={"scheduled_sampling_ramp_shape": "cosine"})
    assert rollout_probability(cosine, 5) == pytest.approx(0.3) and rollout_probability(cosine, 2) < 0.2 * 0.6
    off = plain.model_copy(update={"scheduled_sampling_max_step_offset": 0})
    assert rollout_probability(off, 10) == 0.0


def test_offsets_follow_the_probability():
    generator = torch.Generator().manual_seed(0)
    offsets = draw_offsets(4000, 0.25, 3, generator)
    assert set(offsets.unique().tolist()) == {0, 1, 2, 3}
    assert (offsets > 0).float().mean().item() == pytest.approx(0.25, abs=0.03)
    assert draw_offsets(10, 0.0, 3, generator).sum() == 0


@pytest.mark.parametrize("sampler", ["unipc", "euler", "dpm"])
@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction"])
def test_rollout_with_a_perfect_model_lands_exactly_on_the_training_noise_level(sampler, prediction_type,
                                                                               tiny_models):
    from diffusers import DDPMScheduler

    scheduler = DDPMScheduler.from_pretrained(tiny_models["sd"], subfolder="scheduler", prediction_type=prediction_type)
    generator = torch.Generator().manual_seed(0)
    clean, noise = torch.randn(1, 4, 8, 8, generator=generator), torch.randn(1, 4, 8, 8, generator=generator)
    calls = []

    def oracle(x, t):
        calls.append(int(t))
        return noise if prediction_type == "epsilon" else scheduler.get_velocity(clean, noise, t)

    for start, end in ((510, 500), (12, 3), (999, 990)):
        calls.clear()
        rolled = roll_forward(oracle, make_sampler(sampler, scheduler.config), scheduler, clean, noise, start, end)
        expected = scheduler.add_noise(clean, noise, torch.tensor([end]))
        assert torch.allclose(rolled, expected, atol=1e-5)
        assert calls == list(range(start, end, -1))  # one model call per timestep, from start down to end+1


def test_trainer_rolls_out_exactly_the_chosen_samples(make_config, make_trainer, sd_samples):
    from dreamcore.train.memory import collate

    trainer = make_trainer(make_config(scheduled_sampling_max_step_offset=3, scheduled_sampling_probability=1.0,
                                       scheduled_sampling_sampler="euler"), sd_samples)
    batch = collate(sd_samples[:3])
    latents, noise = batch.latents, torch.randn(3, 4, 32, 32)
    timesteps = torch.tensor([100, 200, 300])
    noisy = trainer.base.noise_scheduler.add_noise(latents, noise, timesteps)
    rolled = trainer._rolled_out(noisy, latents, noise, timesteps, torch.tensor([2, 0, 3]), batch)
    assert torch.equal(rolled[1], noisy[1])
    assert not torch.allclose(rolled[0], noisy[0]) and not torch.allclose(rolled[2], noisy[2])
    assert (rolled[0] - noisy[0]).abs().mean() < 0.5 * noisy[0].abs().mean()  # a near miss, not garbage
