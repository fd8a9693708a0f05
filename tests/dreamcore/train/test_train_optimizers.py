"""Optimizers and learning-rate schedules by SimpleTuner's names: each optimizer trains the tiny SD model,
unknown or unavailable names are config errors listing the choices, optimizer_config reaches the optimizer,
schedule-free training resumes exactly and exports its averaged weights, schedules follow their formulas."""

from __future__ import annotations

import importlib.util
import math

import pytest
import torch
from pydantic import ValidationError

from dreamcore.config.options.train import available_optimizers, parse_optimizer_config
from dreamcore.storage import ArtifactStore
from dreamcore.train.optim import make_lr_scheduler, make_optimizer

NEW_OPTIMIZERS = ["adamw_bf16", "optimi-adam", "optimi-adamw", "optimi-stableadamw", "optimi-lion", "optimi-radam",
                  "optimi-ranger", "optimi-adan", "optimi-sgd", "prodigy", "adamw_schedulefree", "torch-adam",
                  "torch-sgd"]


@pytest.mark.parametrize("name", NEW_OPTIMIZERS)
def test_each_optimizer_takes_a_training_step(name, make_config, make_trainer, sd_samples):
    trainer = make_trainer(make_config(optimizer=name, max_train_steps=1, learning_rate=1e-2), sd_samples[:2])
    before = [p.detach().clone() for p in trainer.params]
    history = trainer.train().history
    assert len(history) == 1 and math.isfinite(history[0]["loss"])
    assert any(not torch.equal(a, b) for a, b in zip(before, trainer.params)), f"{name} changed no weight"


def test_unknown_optimizer_is_a_config_error_listing_the_choices(make_config):
    with pytest.raises(ValidationError, match="optimizer 'adamw_turbo' is unknown; choose one of .*optimi-lion"):
        make_config(optimizer="adamw_turbo")


@pytest.mark.skipif(importlib.util.find_spec("bitsandbytes") is not None, reason="bitsandbytes is installed here")
def test_bitsandbytes_optimizer_without_the_package_says_what_to_install(make_config):
    with pytest.raises(ValidationError, match="needs the bitsandbytes package .*installed choices: auto"):
        make_config(optimizer="bnb-lion8bit")
    assert "bnb-lion8bit" not in available_optimizers()


@pytest.mark.skipif(importlib.util.find_spec("bitsandbytes") is None or torch.cuda.is_available(),
                    reason="needs bitsandbytes on a CPU-only machine")
def test_bitsandbytes_optimizer_on_cpu_says_it_needs_cuda(make_config):
    with pytest.raises(RuntimeError, match="needs bitsandbytes .* and a CUDA GPU"):
        make_optimizer(make_config(optimizer="bnb-lion8bit"), [torch.nn.Parameter(torch.zeros(2))], "cpu")


def test_optimizer_config_reaches_the_optimizer(make_config):
    assert parse_optimizer_config("eps=1e-6,weight_decay=0.0,kahan_sum=true,max_lr=none,k=6,name=x") == {
        "eps": 1e-6, "weight_decay": 0.0, "kahan_sum": True, "max_lr": None, "k": 6, "name": "x"}
    optimizer = make_optimizer(make_config(optimizer="optimi-adamw", optimizer_config="weight_decay=0.25,eps=1e-5"),
                               [torch.nn.Parameter(torch.zeros(2))], "cpu")
    group = optimizer.param_groups[0]
    assert group["weight_decay"] == 0.25 and group["eps"] == 1e-5
    bf16 = make_optimizer(make_config(optimizer="adamw_bf16"), [torch.nn.Parameter(torch.zeros(2))], "cpu")
    assert bf16.param_groups[0]["kahan_sum"] is True
    with pytest.raises(ValidationError, match="optimizer_config item 'eps' is not key=value"):
        make_config(optimizer_config="eps")


def test_schedule_free_resumes_exactly_and_exports_its_averaged_weights(make_config, make_trainer, sd_samples,
                                                                        tmp_path, crash_and_resume,
                                                                        assert_resumed_exactly):
    config = make_config(optimizer="adamw_schedulefree", learning_rate=1e-2, lr_warmup_steps=1, max_train_steps=4,
                         checkpointing_steps=2, use_ema=True)
    straight = make_trainer(config, sd_samples, store=ArtifactStore(str(tmp_path / "a")))
    outcome = straight.train()
    assert not straight.optimizer.optimizer.param_groups[0]["train_mode"]  # eval mode: the averaged weights
    assert_resumed_exactly(straight, outcome, *crash_and_resume(config, sd_samples))


def _rates(config, steps: int) -> list[float]:
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=config.learning_rate)
    scheduler = make_lr_scheduler(config, optimizer)
    rates = []
    for _ in range(steps):
        rates.append(scheduler.get_last_lr()[0])
        optimizer.step()
        scheduler.step()
    return rates


def test_schedules_follow_their_formulas(make_config):
    lr, end = 1e-3, 1e-5
    poly = _rates(make_config(learning_rate=lr, lr_scheduler="polynomial", lr_end=end, lr_power=2.0,
                              max_train_steps=10), 11)
    assert poly[0] == pytest.approx(lr) and poly[10] == pytest.approx(end)
    assert poly[5] == pytest.approx((lr - end) * 0.5**2 + end)
    cosine_min = _rates(make_config(learning_rate=lr, lr_scheduler="cosine_with_min_lr", lr_end=end,
                                    max_train_steps=10), 11)
    assert cosine_min[5] == pytest.approx(end + (lr - end) * 0.5) and cosine_min[10] == pytest.approx(end)
    sine = _rates(make_config(learning_rate=lr, lr_scheduler="sine", lr_end=end, lr_warmup_steps=4,
                              max_train_steps=20), 13)
    for step, rate in enumerate(sine):
        assert rate == pytest.approx(end + (lr - end) * 0.5 * (1 + math.sin(math.pi * step / 4)))
    warm = _rates(make_config(learning_rate=lr, lr_scheduler="constant_with_warmup", lr_warmup_steps=4), 6)
    assert warm == pytest.approx([0, lr / 4, lr / 2, 3 * lr / 4, lr, lr])
    restarts = _rates(make_config(learning_rate=lr, lr_scheduler="cosine_with_restarts", lr_num_cycles=2,
                                  max_train_steps=10), 10)
    assert restarts[0] == pytest.approx(lr) and restarts[5] == pytest.approx(lr)  # the second cycle restarts
    flat = _rates(make_config(learning_rate=lr, optimizer="adamw_schedulefree", lr_scheduler="cosine"), 3)
    assert flat == pytest.approx([lr] * 3)  # schedule-free keeps its own schedule
    with pytest.raises(ValidationError, match="lr_scheduler 'sine' needs lr_warmup_steps >= 1"):
        make_config(lr_scheduler="sine")
