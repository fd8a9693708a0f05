"""The objective: masks, mask-area normalisation, min-SNR weights, the prior-preservation split."""

from __future__ import annotations

import pytest
import torch

from dreamcore.models.families.objectives import min_snr_weights, prediction_target
from dreamcore.train.losses import combine, latent_mask, per_sample_loss


def test_pixel_mask_is_area_interpolated_to_latent_size():
    mask = torch.zeros(1, 1, 64, 64)
    mask[..., :, :33] = 1.0  # the boundary column pair 32/33 is half covered
    small = latent_mask(mask, (32, 32))
    assert small.shape == (1, 1, 32, 32)
    assert torch.all(small[..., :16] == 1.0)
    assert torch.allclose(small[..., 16], torch.full((32,), 0.5))
    assert torch.all(small[..., 17:] == 0.0)


def test_mask_area_normalisation():
    prediction, target = torch.ones(1, 4, 2, 2), torch.zeros(1, 4, 2, 2)
    mask = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]])
    assert per_sample_loss(prediction, target, mask).item() == pytest.approx(0.25)  # over the whole latent
    assert per_sample_loss(prediction, target, mask, normalise_by_area=True).item() == pytest.approx(1.0)
    empty = torch.zeros_like(mask)
    assert per_sample_loss(prediction, target, empty, normalise_by_area=True).item() == 0.0


def test_min_snr_weights_match_the_formula(tiny_models):
    from diffusers import DDPMScheduler

    scheduler = DDPMScheduler.from_pretrained(tiny_models["sd"], subfolder="scheduler")
    timesteps = torch.tensor([1, 100, 500, 999])
    abar = scheduler.alphas_cumprod[timesteps]
    snr = abar / (1 - abar)
    eps = min_snr_weights(scheduler, timesteps, 5.0, "epsilon")
    v = min_snr_weights(scheduler, timesteps, 5.0, "v_prediction")
    assert torch.allclose(eps, torch.minimum(snr, torch.tensor(5.0)) / snr, rtol=1e-5)
    assert torch.allclose(v, torch.minimum(snr, torch.tensor(5.0)) / (snr + 1), rtol=1e-5)
    assert eps[0] < 1.0 and eps[-1] == pytest.approx(1.0)  # low-noise steps are damped, high-noise kept


def test_v_prediction_target_is_the_velocity(tiny_models):
    from diffusers import DDPMScheduler

    scheduler = DDPMScheduler.from_pretrained(tiny_models["sd"], subfolder="scheduler")
    latents, noise, t = torch.randn(2, 4, 8, 8), torch.randn(2, 4, 8, 8), torch.tensor([10, 900])
    v = prediction_target(scheduler, latents, noise, t, "v_prediction")
    a, s = scheduler.alphas_cumprod[t].sqrt(), (1 - scheduler.alphas_cumprod[t]).sqrt()
    assert torch.allclose(v, a[:, None, None, None] * noise - s[:, None, None, None] * latents, atol=1e-6)
    assert prediction_target(scheduler, latents, noise, t, "epsilon") is noise


def test_regularisation_loss_is_weighted_and_reported_separately():
    losses = torch.tensor([1.0, 2.0, 4.0, 8.0], requires_grad=True)
    regularisation = torch.tensor([False, False, True, True])
    parts = combine(losses, regularisation, prior_loss_weight=0.5)
    assert parts.subject == pytest.approx(1.5) and parts.regularisation == pytest.approx(6.0)
    assert (parts.subject_count, parts.regularisation_count) == (2, 2)
    assert parts.total.item() == pytest.approx((1 + 2 + 0.5 * 4 + 0.5 * 8) / 4)
    only_subject = combine(losses, None, prior_loss_weight=0.5)
    assert only_subject.regularisation is None and only_subject.total.item() == pytest.approx(15 / 4)


def test_changing_pixels_under_a_zero_mask_leaves_the_gradient_unchanged(make_config, make_trainer, sd_samples):
    """The masked-out region of the target (its pixels' latents) has no say in the adapter's gradient."""
    trainer = make_trainer(make_config(lora_dropout=0.0), sd_samples)  # no dropout: the passes must be the same
    unet = trainer.base.unet
    generator = torch.Generator().manual_seed(3)
    noisy = torch.randn(2, 4, 32, 32, generator=generator)
    embeds = torch.cat([s.prompt_embeds for s in sd_samples[:2]])
    timesteps = torch.tensor([100, 700])
    pixel_mask = torch.ones(2, 1, 64, 64)
    pixel_mask[..., 32:] = 0.0  # right half of the image ignored
    mask = latent_mask(pixel_mask, (32, 32))
    target = torch.randn(2, 4, 32, 32, generator=generator)
    changed = target.clone()
    changed[..., 16:] = torch.randn(2, 4, 32, 16, generator=generator) * 5  # new content under the mask

    def gradient(target, mask):
        unet.zero_grad(set_to_none=True)
        prediction = unet(noisy, timesteps, encoder_hidden_states=embeds).sample
        combine(per_sample_loss(prediction, target, mask), None, 1.0).total.backward()
        return torch.cat([p.grad.flatten() for p in trainer.params])

    assert torch.equal(gradient(target, mask), gradient(changed, mask))
    assert not torch.allclose(gradient(target, None), gradient(changed, None))  # the control: unmasked it matters
