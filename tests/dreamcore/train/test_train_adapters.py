"""Adapters: what they wrap, that switching them off gives the base model, and the LyCORIS traps."""

from __future__ import annotations

import pytest
import torch

from dreamcore.train.adapters import AdapterError, build_adapter

LOKR = {"algo": "lokr", "multiplier": 1.0, "linear_dim": 10000, "linear_alpha": 1, "factor": 4,
        "apply_preset": {"target_module": ["Attention", "FeedForward"],
                         "module_algo_map": {"Attention": {"factor": 4}, "FeedForward": {"factor": 2}}}}


def _unet(tiny_models):
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel.from_pretrained(tiny_models["sd"], subfolder="unet")


def _inputs():
    generator = torch.Generator().manual_seed(0)
    return (torch.randn(2, 4, 32, 32, generator=generator), torch.tensor([50, 600]),
            torch.randn(2, 8, 32, generator=generator))


def _perturb(adapter):
    """Non-zero adapter weights (a fresh LoRA's up-projection is zero, which would prove nothing)."""
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in adapter.trainable_parameters():
            p.add_(torch.randn(p.shape, generator=generator) * 0.2)


@pytest.mark.parametrize("kind", ["lora", "lycoris", "full"])
def test_adapter_disabled_prediction_equals_the_base_model(kind, tiny_models, make_config, lycoris_file):
    # lora_dropout 0: the module is in training mode, and dropout would make two passes differ.
    overrides = {"lora": {"lora_dropout": 0.0}, "lycoris": {"lora_type": "lycoris", "lycoris_config": lycoris_file(LOKR)},
                 "full": {"model_type": "full"}}[kind]
    adapter = build_adapter(make_config(**overrides), _unet(tiny_models), keep_reference=True)
    _perturb(adapter)
    noisy, timesteps, embeds = _inputs()
    with torch.no_grad():
        base = _unet(tiny_models)(noisy, timesteps, embeds).sample
        trained = adapter.unet(noisy, timesteps, embeds).sample
        with adapter.disabled() as base_model:
            disabled = base_model(noisy, timesteps, embeds).sample
        again = adapter.unet(noisy, timesteps, embeds).sample
    assert (trained - base).abs().max() > 1e-3  # the adapter does change the prediction
    assert torch.allclose(disabled, base, atol=2e-6)  # LyCORIS multiplier 0 matches within 2e-6
    assert torch.equal(again, trained)  # and it is switched back on


def test_full_fine_tune_without_reference_refuses_base_predictions(tiny_models, make_config):
    adapter = build_adapter(make_config(model_type="full"), _unet(tiny_models), keep_reference=False)
    with pytest.raises(AdapterError, match="frozen reference"):
        with adapter.disabled():
            pass


def test_wrapped_module_counts(tiny_models, make_config, lycoris_file):
    lora = build_adapter(make_config(peft_lora_target_modules="to_q,to_v"), _unet(tiny_models))
    assert lora.wrapped_modules == 16  # 8 attention layers (4 transformer blocks x attn1/attn2) x 2
    assert all(p.dtype == torch.float32 for p in lora.trainable_parameters())
    assert not any(p.requires_grad for n, p in lora.unet.named_parameters() if "lora_" not in n)
    lycoris = build_adapter(make_config(lora_type="lycoris", lycoris_config=lycoris_file(LOKR)), _unet(tiny_models))
    assert lycoris.wrapped_modules == 40  # the Attention and FeedForward Linears only
    assert {type(m).__name__ for m in lycoris.network.loras} == {"LokrModule"}


def test_an_adapter_that_wraps_nothing_is_an_error(tiny_models, make_config, lycoris_file):
    with pytest.raises(AdapterError, match="match no UNet module"):
        build_adapter(make_config(peft_lora_target_modules=["no_such_layer"]), _unet(tiny_models))
    nothing = {"algo": "lora", "linear_dim": 4, "apply_preset": {"target_module": ["NoSuchBlock"]}}
    with pytest.raises(AdapterError, match="wrapped 0 modules"):
        build_adapter(make_config(lora_type="lycoris", lycoris_config=lycoris_file(nothing)), _unet(tiny_models))


def test_lycoris_preset_does_not_leak_into_later_networks(tiny_models, make_config, lycoris_file):
    from lycoris import LycorisNetwork

    before = list(LycorisNetwork.TARGET_REPLACE_MODULE), dict(LycorisNetwork.MODULE_ALGO_MAP)
    build_adapter(make_config(lora_type="lycoris", lycoris_config=lycoris_file(LOKR)), _unet(tiny_models))
    assert (list(LycorisNetwork.TARGET_REPLACE_MODULE), dict(LycorisNetwork.MODULE_ALGO_MAP)) == before
    plain = {"algo": "lora", "linear_dim": 4, "linear_alpha": 4}
    later = build_adapter(make_config(lora_type="lycoris", lycoris_config=lycoris_file(plain, "plain.json")),
                          _unet(tiny_models))
    assert later.wrapped_modules > 40  # the default scope (every Linear and conv), not the earlier preset


def test_lycoris_config_errors_name_the_file_and_key(make_config, lycoris_file, tiny_models, tmp_path):
    bad = lycoris_file({"algo": "glora"}, "bad.json")
    with pytest.raises(AdapterError, match=r"bad\.json: key 'algo' is 'glora'"):
        build_adapter(make_config(lora_type="lycoris", lycoris_config=bad), _unet(tiny_models))
    with pytest.raises(AdapterError, match="file not found"):
        build_adapter(make_config(lora_type="lycoris", lycoris_config=str(tmp_path / "missing.json")),
                      _unet(tiny_models))
