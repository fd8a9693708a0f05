"""mixed_precision on CPU: bf16 trains under CPU autocast where the CPU has AMX (the accelerate path CUDA
takes: frozen base in bf16, trained parameters fp32); what a CPU cannot honour, or would run slower than
fp32, is said, not silently replaced by fp32."""

from __future__ import annotations

import logging

import pytest
import torch

from dreamcore.train.precision import cpu_supports_bf16, training_precision
from dreamcore.train.trainer import batch_conditioning


def test_fp16_on_a_cpu_says_it_trains_in_fp32(caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="dreamcore.train.precision"):
        assert training_precision("fp16", cuda=False) == "no"
    assert "mixed_precision 'fp16': CPUs have no fast fp16 math" in caplog.text and "training in fp32" in caplog.text
    assert training_precision("no", cuda=False) == "no"


def test_bf16_on_a_cpu_is_bf16_where_supported_and_said_otherwise(caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="dreamcore.train.precision"):
        chosen = training_precision("bf16", cuda=False)
    if cpu_supports_bf16():
        assert chosen == "bf16" and caplog.text == ""
    else:
        assert chosen == "no" and "training in fp32" in caplog.text


@pytest.mark.parametrize(("amx", "avx512_bf16", "chosen", "said"), [
    (True, True, "bf16", ""),
    (False, True, "no", "AVX512-BF16 but no AMX, where bf16 autocast trains slower than fp32"),
    (False, False, "no", "this CPU has no AMX or other native bf16 matrix math"),
])
def test_bf16_on_a_cpu_autocasts_only_with_amx(monkeypatch, caplog, amx, avx512_bf16, chosen, said) -> None:
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
    with caplog.at_level(logging.WARNING, logger="dreamcore.train.precision"):
        assert training_precision("bf16", cuda=False) == chosen
    assert said in caplog.text and (said == "") == (caplog.text == "")


@pytest.mark.skipif(not cpu_supports_bf16(), reason="this CPU has no AMX (bf16 autocast trains in fp32)")
def test_bf16_lora_trains_under_cpu_autocast_with_fp32_master_weights(make_config, make_trainer, sd_samples) -> None:
    trainer = make_trainer(make_config(mixed_precision="bf16", max_train_steps=2), sd_samples[:4])

    assert trainer.accelerator.mixed_precision == "bf16"
    assert {p.dtype for p in trainer.params} == {torch.float32}
    frozen = {p.dtype for p in trainer.base.unet.parameters() if not p.requires_grad}
    assert frozen == {torch.bfloat16}
    seen = []
    linear = next(m for m in trainer.base.unet.modules() if isinstance(m, torch.nn.Linear))
    hook = linear.register_forward_hook(lambda module, args, output: seen.append(output.dtype))
    batch = next(iter(trainer.batches))
    with torch.no_grad():  # the UNet computes in bf16; accelerate's wrapper hands the loss fp32
        prediction = trainer.model(batch.latents, torch.tensor([10, 500]), batch_conditioning(batch))
    hook.remove()
    assert set(seen) == {torch.bfloat16} and prediction.dtype == torch.float32
    outcome = trainer.train()
    assert len(outcome.history) == 2 and all(torch.isfinite(torch.tensor(e["loss"])) for e in outcome.history)



@pytest.mark.skipif(not cpu_supports_bf16(), reason="this CPU has no AMX (bf16 autocast trains in fp32)")
def test_int8_quanto_sdxl_trains_under_cpu_bf16_autocast(tiny_models, make_trainer, tmp_path) -> None:
    """quanto's CPU int8 kernel for bf16 activations refuses the SDXL attention's non-contiguous inputs
    unless models.quanto makes them contiguous."""
    from dreamcore.config import TrainingConfig
    from dreamcore.train.memory import demo_samples

    samples = demo_samples(tiny_models["sdxl"], tmp_path / "demo")[:2]
    config = TrainingConfig(pretrained_model_name_or_path=str(tiny_models["sdxl"]), model_family="sdxl",
                            mixed_precision="bf16", base_model_precision="int8-quanto", max_train_steps=2,
                            checkpointing_steps=2, train_batch_size=1, lora_rank=4, optimizer="adamw", seed=0)
    outcome = make_trainer(config, samples).train()

    assert len(outcome.history) == 2 and all(torch.isfinite(torch.tensor(e["loss"])) for e in outcome.history)
