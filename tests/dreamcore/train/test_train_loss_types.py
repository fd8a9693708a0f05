"""loss_type l2 / huber / smooth_l1 and huber_schedule against direct computations on fixed tensors, with
masks, min-SNR weights, prior preservation and the flow-matching objective."""

from __future__ import annotations

import math

import pytest
import torch

from dreamcore.train.losses import combine, elementwise_error, huber_c_values, per_sample_loss
from dreamcore.train.memory import collate

PREDICTION = torch.tensor([[[[0.0, 1.0], [2.0, -3.0]]], [[[0.5, 0.5], [0.5, 0.5]]]])  # [2, 1, 2, 2]
TARGET = torch.zeros_like(PREDICTION)


def huber(d: float, c: float) -> float:
    return 2 * c * (math.sqrt(d * d + c * c) - c)


def test_l2_is_the_squared_error():
    assert per_sample_loss(PREDICTION, TARGET).tolist() == pytest.approx([(0 + 1 + 4 + 9) / 4, 0.25])


def test_huber_and_smooth_l1_with_a_per_sample_c():
    c = torch.tensor([0.1, 0.5])
    huber_losses = per_sample_loss(PREDICTION, TARGET, loss_type="huber", huber_c=c)
    expected = [sum(huber(d, 0.1) for d in (0, 1, 2, -3)) / 4, huber(0.5, 0.5)]
    assert huber_losses.tolist() == pytest.approx(expected)
    smooth = per_sample_loss(PREDICTION, TARGET, loss_type="smooth_l1", huber_c=c)
    assert smooth.tolist() == pytest.approx([e / ci for e, ci in zip(expected, c.tolist())])
    # Large errors grow linearly (about 2c|d|), not quadratically.
    big = elementwise_error(torch.tensor([100.0]), torch.tensor([0.0]), "huber", 0.1)
    assert float(big) == pytest.approx(2 * 0.1 * 100, rel=1e-2)


def test_masked_huber_weights_each_element_and_normalises_by_area():
    mask = torch.tensor([[[[1.0, 0.0], [0.0, 1.0]]], [[[1.0, 1.0], [1.0, 1.0]]]])
    c = torch.tensor([0.1, 0.1])
    losses = per_sample_loss(PREDICTION, TARGET, mask, loss_type="huber", huber_c=c)
    assert losses[0].item() == pytest.approx((huber(0, 0.1) + huber(-3, 0.1)) / 4)
    by_area = per_sample_loss(PREDICTION, TARGET, mask, normalise_by_area=True, loss_type="huber", huber_c=c)
    assert by_area[0].item() == pytest.approx((huber(0, 0.1) + huber(-3, 0.1)) / 2)


def test_huber_schedules_as_diffusers_and_simpletuner_define_them(make_config):
    from diffusers import DDPMScheduler

    scheduler = DDPMScheduler(num_train_timesteps=1000)
    timesteps = torch.tensor([0, 500, 999])
    constant = huber_c_values(make_config(loss_type="huber", huber_schedule="constant", huber_c=0.2), timesteps, 1000)
    assert constant.tolist() == pytest.approx([0.2] * 3)
    exponential = huber_c_values(make_config(loss_type="huber", huber_schedule="exponential", huber_c=0.1),
                                 timesteps, 1000)
    assert exponential.tolist() == pytest.approx([0.1 ** (t / 1000) for t in (0, 500, 999)])
    snr = huber_c_values(make_config(loss_type="huber", huber_schedule="snr", huber_c=0.1), timesteps, 1000,
                         scheduler.alphas_cumprod)
    for value, t in zip(snr.tolist(), timesteps.tolist()):
        a = float(scheduler.alphas_cumprod[t])
        sigma = ((1 - a) / a) ** 0.5
        assert value == pytest.approx((1 - 0.1) / (1 + sigma) ** 2 + 0.1, rel=1e-5)
    # Flow matching: timesteps are sigma x 1000 (SimpleTuner's formula).
    flow = huber_c_values(make_config(loss_type="smooth_l1", huber_c=0.1), torch.tensor([250.0]), 1000)
    ratio = ((1 - 0.25) / (0.25 + 1e-4)) ** 0.5
    assert flow.item() == pytest.approx(0.9 / (1 + ratio) ** 2 + 0.1, rel=1e-5)
    assert huber_c_values(make_config(), timesteps, 1000) is None  # l2


def test_min_snr_weights_and_the_prior_split_apply_to_huber_losses():
    losses = per_sample_loss(PREDICTION, TARGET, loss_type="huber", huber_c=torch.tensor([0.1, 0.1]))
    parts = combine(losses, torch.tensor([False, True]), 0.5, weights=torch.tensor([2.0, 1.0]))
    assert parts.total.item() == pytest.approx((2 * losses[0].item() + 0.5 * losses[1].item()) / 2)


@pytest.mark.parametrize("loss_type", ["huber", "smooth_l1"])
def test_a_trainer_step_with_huber_min_snr_and_prior_preservation(loss_type, make_config, make_trainer, sd_samples):
    config = make_config(loss_type=loss_type, huber_schedule="snr", snr_gamma=5.0, max_train_steps=1)
    trainer = make_trainer(config, sd_samples)
    batch = collate([sd_samples[0], sd_samples[4]])  # a masked subject sample and a regularisation one
    with torch.no_grad():
        trainer.noise.manual_seed(7)
        huber_total = trainer.loss(batch).total
        trainer.noise.manual_seed(7)
        trainer.config = make_config(snr_gamma=5.0, max_train_steps=1)
        l2_total = trainer.loss(batch).total
    assert torch.isfinite(huber_total) and float(huber_total) != pytest.approx(float(l2_total))
    trainer.config = config
    before = [p.detach().clone() for p in trainer.params]
    history = trainer.train().history
    assert math.isfinite(history[0]["loss"])
    assert any(not torch.equal(a, b) for a, b in zip(before, trainer.params))


def test_flow_matching_trains_with_huber(make_config, make_trainer, tiny_models):
    from PIL import Image

    from dreamcore.models import detect_family, load_pipeline
    from dreamcore.train.memory import encode_one

    family = detect_family(tiny_models["sd3"])
    with torch.no_grad():
        red = Image.new("RGB", (64, 64), (200, 30, 30))
        sample = encode_one(load_pipeline(tiny_models["sd3"], family), family, red, "a red toy")
    config = make_config(pretrained_model_name_or_path=str(tiny_models["sd3"]), model_family="sd3",
                         loss_type="huber", huber_schedule="exponential", max_train_steps=2, train_batch_size=1)
    history = make_trainer(config, [sample]).train().history
    assert len(history) == 2 and all(math.isfinite(e["loss"]) for e in history)
