"""Flux.2 through the trainer on its tiny models (the exports, shared with SD3 and Flux, are in
test_train_dit_export.py): what its samples carry, SimpleTuner's default LoRA targets, exact resume, the
refusals by key, and the dev shape (Flux2Pipeline, a guidance embedding) training a LoRA Flux2Pipeline loads."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from dreamcore.storage import ArtifactStore
from tests.conftest import torch_threads
from tests.dreamcore.train.test_train_dit_export import _generate, _train


def test_samples_carry_three_layer_qwen3_states_and_normalised_latents(dit_samples):
    sample = dit_samples["flux2"][0]
    assert sample.prompt_embeds.shape[-2:] == (32, 48) and sample.pooled_prompt_embeds is None
    assert sample.latents.shape[-3:] == (16, 32, 32)


def test_resume_is_exact(make_dit_config, dit_samples, make_trainer, crash_and_resume, tmp_path,
                         assert_resumed_exactly):
    """A crash after step 3 with checkpoints every 2 resumes at 2 and ends equal (EMA, accumulation, dropout)."""
    config = make_dit_config("flux2", max_train_steps=4, checkpointing_steps=2, lora_dropout=0.1, use_ema=True,
                             lr_scheduler="cosine", lr_warmup_steps=1, gradient_accumulation_steps=2)
    straight = make_trainer(config, dit_samples["flux2"], store=ArtifactStore(str(tmp_path / "a")))
    straight_outcome = straight.train()
    resumed, outcome = crash_and_resume(config, dit_samples["flux2"])
    assert_resumed_exactly(straight, straight_outcome, resumed, outcome)


def test_prior_preservation_trains_and_ddpm_only_features_are_refused(make_dit_config, dit_samples, make_trainer):
    """Prior preservation on the base prediction trains (flow matching); min-SNR and the base/refiner split are
    refused by key, as is validation_guidance_rescale (Flux.2's pipelines take none)."""
    samples = dit_samples["flux2"]
    outcome = make_trainer(make_dit_config("flux2", max_train_steps=2, prior_preservation_target="base_prediction"),
                           samples).train()
    assert outcome.steps_run == 2 and all(torch.isfinite(torch.tensor(e["loss"])) for e in outcome.history)
    with pytest.raises(ValueError, match="snr_gamma.*flux2"):
        make_trainer(make_dit_config("flux2", snr_gamma=5.0), samples)
    with pytest.raises(ValueError, match="refiner_training.*flux2"):
        make_trainer(make_dit_config("flux2", refiner_training=True), samples)
    with pytest.raises(ValueError, match="validation_guidance_rescale.*Flux2KleinPipeline"):
        make_trainer(make_dit_config("flux2", validation_guidance_rescale=0.7), samples)


def test_dev_lora_trains_with_guidance_and_loads_into_flux2_pipeline(make_config, tiny_models, tmp_path):
    """The dev shape (Flux2Pipeline, Mistral-3 states, a guidance embedding the trainer feeds 1.0) trains on
    SimpleTuner's default targets (both block kinds), and its LoRA loads with Flux2Pipeline.load_lora_weights and
    changes the output."""
    from diffusers import Flux2Pipeline

    from dreamcore.train.memory import demo_samples

    with torch_threads(1):
        samples = demo_samples(tiny_models["flux2-dev"], tmp_path / "data", subjects=2, regularisation=0)
    assert samples[0].prompt_embeds.shape[-2:] == (32, 48)
    config = make_config(pretrained_model_name_or_path=str(tiny_models["flux2-dev"]), model_family="flux2",
                         max_train_steps=2, lora_alpha=8, learning_rate=5e-2)
    store, result = _train(config, samples, tmp_path / "train")
    assert result.details["family"] == "flux2"
    saved = load_file(store.path(f"train/{result.key}/export/diffusers/pytorch_lora_weights.safetensors"))
    assert any(".attn.to_qkv_mlp_proj." in k for k in saved) and any(".attn.to_q." in k for k in saved)
    assert not any("add_q_proj" in k or ".ff." in k for k in saved)
    pipe = Flux2Pipeline.from_pretrained(tiny_models["flux2-dev"])
    assert pipe.transformer.config.guidance_embeds
    before = _generate(pipe)
    pipe.load_lora_weights(store.path(f"train/{result.key}/export/diffusers"),
                           weight_name="pytorch_lora_weights.safetensors")
    assert abs(_generate(pipe) - before).max() > 1e-3
