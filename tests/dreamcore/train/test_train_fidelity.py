"""SimpleTuner's gradient clipping (grad_clip_method value / norm, max_grad_norm 0 off) and LoRA initialisations
(lora_init_type), checked against torch's clip functions and peft's init_lora_weights on the tiny SD model."""

from __future__ import annotations

import pytest
import torch

from dreamcore.train import trainer as trainer_module
from dreamcore.train.adapters import build_adapter


def _clipped_step(monkeypatch, make_config, make_trainer, sd_samples, **overrides):
    """One optimiser step; the trained parameters' gradients just before clipping and as the optimiser saw them."""
    config = make_config(max_train_steps=1, checkpointing_steps=10, **overrides)
    trainer = make_trainer(config, sd_samples)
    seen: dict[str, list[torch.Tensor]] = {}
    clip = trainer_module.clip_gradients

    def clip_and_look(accelerator, params, cfg):
        seen["before"] = [p.grad.detach().clone() for p in params]
        clip(accelerator, params, cfg)

    step = trainer.optimizer.step

    def step_and_look(*args, **kwargs):
        seen["after"] = [p.grad.detach().clone() for p in trainer.params]
        return step(*args, **kwargs)

    monkeypatch.setattr(trainer_module, "clip_gradients", clip_and_look)
    monkeypatch.setattr(trainer.optimizer, "step", step_and_look)
    trainer.train()
    return seen["before"], seen["after"]


def _as_parameters(grads: list[torch.Tensor]) -> list[torch.nn.Parameter]:
    params = [torch.nn.Parameter(torch.zeros_like(g)) for g in grads]
    for p, g in zip(params, grads, strict=True):
        p.grad = g.clone()
    return params


@pytest.mark.parametrize(("method", "threshold"), [("value", 1e-4), ("norm", 1e-3)])
def test_clipping_gives_torchs_gradients(method, threshold, monkeypatch, make_config, make_trainer, sd_samples):
    before, after = _clipped_step(monkeypatch, make_config, make_trainer, sd_samples,
                                  grad_clip_method=method, max_grad_norm=threshold)
    expected = _as_parameters(before)
    if method == "value":
        torch.nn.utils.clip_grad_value_(expected, threshold)
    else:
        torch.nn.utils.clip_grad_norm_(expected, threshold)
    assert any(not torch.equal(b, a) for b, a in zip(before, after, strict=True)), "the threshold clipped nothing"
    for p, got in zip(expected, after, strict=True):
        torch.testing.assert_close(got, p.grad, rtol=1e-6, atol=0)
    if method == "value":
        assert max(float(g.abs().max()) for g in after) <= threshold


def test_max_grad_norm_zero_clips_nothing(monkeypatch, make_config, make_trainer, sd_samples):
    before, after = _clipped_step(monkeypatch, make_config, make_trainer, sd_samples, max_grad_norm=0.0)
    assert all(torch.equal(b, a) for b, a in zip(before, after, strict=True))


@pytest.mark.parametrize(("lora_init_type", "init_lora_weights"), [("default", True), ("gaussian", "gaussian")])
def test_lora_init_type_gives_peft_initial_weights(lora_init_type, init_lora_weights, tiny_models, make_config):
    from diffusers import UNet2DConditionModel
    from peft import LoraConfig

    config = make_config(lora_init_type=lora_init_type, lora_dropout=0.1)
    ours = UNet2DConditionModel.from_pretrained(tiny_models["sd"], subfolder="unet")
    theirs = UNet2DConditionModel.from_pretrained(tiny_models["sd"], subfolder="unet")
    torch.manual_seed(7)
    build_adapter(config, ours)
    torch.manual_seed(7)
    theirs.add_adapter(LoraConfig(r=config.lora_rank, lora_alpha=config.lora_rank, lora_dropout=0.1,
                                  init_lora_weights=init_lora_weights, target_modules=config.lora_target_modules))
    mine = {k: v for k, v in ours.state_dict().items() if "lora_" in k}
    peft_weights = {k: v for k, v in theirs.state_dict().items() if "lora_" in k}
    assert mine.keys() == peft_weights.keys() and mine
    for key, value in mine.items():
        torch.testing.assert_close(value.float(), peft_weights[key].float(), rtol=0, atol=0, msg=key)


def test_default_and_gaussian_initialisations_differ(tiny_models, make_config):
    from diffusers import UNet2DConditionModel

    weights = {}
    for kind in ("default", "gaussian"):
        unet = UNet2DConditionModel.from_pretrained(tiny_models["sd"], subfolder="unet")
        torch.manual_seed(7)
        build_adapter(make_config(lora_init_type=kind), unet)
        weights[kind] = {k: v for k, v in unet.state_dict().items() if "lora_A" in k}
    assert any(not torch.equal(weights["default"][k], weights["gaussian"][k]) for k in weights["default"])
