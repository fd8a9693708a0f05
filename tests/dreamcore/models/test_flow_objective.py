"""Flow matching (SD3, Flux): SimpleTuner's sigma distributions, the noised latents and target, refusals."""

from __future__ import annotations

import math

import pytest
import torch

from dreamcore.config import TrainingConfig
from dreamcore.models import family_named
from dreamcore.models.families.objectives import FlowMatchObjective, flow_sigmas, shift_sigmas

N = 20_000


def _config(**overrides) -> TrainingConfig:
    return TrainingConfig(model_family="flux", **overrides)


def _sigmas(seed: int = 0, latent_size=(32, 32), **overrides):
    return flow_sigmas(_config(**overrides), N, latent_size, torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("options", [
    {}, {"flow_schedule_shift": 0}, {"flow_use_uniform_schedule": True}, {"flow_use_beta_schedule": True},
    {"flow_schedule_auto_shift": True}, {"flow_sigmoid_scale": 3.0},
])
def test_sigmas_are_seeded_and_in_range(options):
    first, again, other = _sigmas(0, **options), _sigmas(0, **options), _sigmas(1, **options)
    assert first.shape == (N,)
    assert torch.equal(first, again) and not torch.equal(first, other)
    assert float(first.min()) >= 0.0 and float(first.max()) <= 1.0


def test_the_default_is_a_logit_normal_then_shifted_by_3():
    unshifted = _sigmas(flow_schedule_shift=0)
    logits = torch.logit(unshifted.double())
    assert abs(float(logits.mean())) < 0.03 and abs(float(logits.std()) - 1.0) < 0.03  # sigmoid(N(0, 1))
    wide = torch.logit(_sigmas(flow_schedule_shift=0, flow_sigmoid_scale=2.0).double())
    assert abs(float(wide.std()) - 2.0) < 0.05
    assert torch.allclose(_sigmas(), shift_sigmas(unshifted, 3.0))  # same draws, then the shift
    assert float(_sigmas().median()) == pytest.approx(0.75, abs=0.02)  # 3 x 0.5 / (1 + 2 x 0.5)


def test_uniform_and_beta_schedules():
    uniform = _sigmas(flow_schedule_shift=0, flow_use_uniform_schedule=True)
    assert float(uniform.mean()) == pytest.approx(0.5, abs=0.01)
    assert float((uniform < 0.1).float().mean()) == pytest.approx(0.1, abs=0.01)
    beta = _sigmas(flow_schedule_shift=0, flow_use_beta_schedule=True, flow_beta_schedule_alpha=5.0,
                   flow_beta_schedule_beta=1.0)
    assert float(beta.mean()) == pytest.approx(5 / 6, abs=0.01)
    # SimpleTuner: uniform wins when both are set
    both = _sigmas(flow_schedule_shift=0, flow_use_uniform_schedule=True, flow_use_beta_schedule=True)
    assert torch.equal(both, uniform)


def test_shift_is_monotone_in_sigma_and_in_shift():
    s = torch.linspace(0, 1, 101)
    for shift in (0.5, 1.0, 2.0, 3.0, 6.0):
        shifted = shift_sigmas(s, shift)
        assert torch.all(shifted[1:] >= shifted[:-1])
        assert float(shifted[0]) == 0.0 and float(shifted[-1]) == pytest.approx(1.0)
    assert torch.all(shift_sigmas(s, 6.0) >= shift_sigmas(s, 3.0)) and torch.all(shift_sigmas(s, 3.0) >= s)
    assert torch.equal(shift_sigmas(s, 0), s) and torch.allclose(shift_sigmas(s, 1.0), s)


def test_auto_shift_grows_with_the_image_and_matches_flux_at_1024px():
    small = _sigmas(flow_schedule_auto_shift=True, latent_size=(32, 32))
    large = _sigmas(flow_schedule_auto_shift=True, latent_size=(128, 128))
    unshifted = _sigmas(flow_schedule_shift=0)
    assert torch.all(large >= small)
    # 1024 px: 4096 patches -> mu = max_shift 1.15 -> shift e^1.15 (what the flow_schedule_auto_shift help says)
    assert torch.allclose(large, shift_sigmas(unshifted, math.exp(1.15)), atol=1e-6)


def test_draw_noises_on_the_straight_path_with_the_velocity_target():
    from diffusers import FlowMatchEulerDiscreteScheduler

    scheduler = FlowMatchEulerDiscreteScheduler(shift=3.0)
    latents = torch.randn(3, 16, 8, 8)
    noised = FlowMatchObjective().draw(_config(), scheduler, latents, torch.Generator().manual_seed(0), (0, 1000),
                                       "flow_matching")
    sigmas = noised.timesteps / 1000
    assert torch.allclose(noised.noisy, (1 - sigmas[:, None, None, None]) * latents
                          + sigmas[:, None, None, None] * noised.noise, atol=1e-6)
    assert torch.allclose(noised.target, noised.noise - latents)
    fixed = FlowMatchObjective().at(scheduler, latents, noised.noise, 250, "flow_matching")
    assert torch.allclose(fixed.timesteps, torch.full((3,), 250.0))
    assert torch.allclose(fixed.noisy, 0.75 * latents + 0.25 * noised.noise)


@pytest.mark.parametrize(("key", "value"), [("snr_gamma", 5.0), ("scheduled_sampling_max_step_offset", 10),
                                            ("refiner_training", True)])
def test_flow_matching_refuses_ddpm_only_features_by_key_and_family(key, value):
    for name in ("sd3", "flux"):
        with pytest.raises(ValueError, match=rf"{key} is set but .* is a {name} model trained by flow matching"):
            family_named(name).objective.check_config(_config(**{key: value}), name)
    family_named("sd1").objective.check_config(_config(snr_gamma=5.0), "sd1")  # DDPM keeps them


def test_flow_matching_refuses_a_prediction_type():
    with pytest.raises(ValueError, match="prediction_type 'epsilon' is set.*flow matching"):
        FlowMatchObjective().noise_scheduler({"shift": 3.0}, "epsilon", where="model")
    assert FlowMatchObjective().noise_scheduler({"shift": 3.0}, None, where="model").config.shift == 3.0
