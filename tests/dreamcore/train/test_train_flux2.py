"""Flux.2 through the train stage on its tiny (klein-shaped) model: the diffusers LoRA loads with stock
`Flux2KleinPipeline.load_lora_weights` and changes the output, LyCORIS and full fine-tunes export, a crashed run
resumes exactly, and the DDPM-only features are refused by key."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from dreamcore.storage import ArtifactStore
from tests.conftest import torch_threads
from tests.dreamcore.train.test_train_dit_export import _train


@pytest.fixture(scope="module")
def flux2_samples(tiny_models, tmp_path_factory):
    """4 subject samples (with masks) + 2 regularisation samples: Qwen3 states of 3 layers [32, 48], normalised
    unpatchified latents 16x32x32."""
    from dreamcore.train.memory import demo_samples

    with torch_threads(1):
        return demo_samples(tiny_models["flux2"], tmp_path_factory.mktemp("train-demo-flux2"))


@pytest.fixture
def flux2_config(make_config, tiny_models):
    """TrainingConfig factory for the tiny Flux.2 (CPU fp32, batch 2, 4 steps, checkpoints every 2)."""
    def make(**overrides):
        return make_config(**({"pretrained_model_name_or_path": str(tiny_models["flux2"]), "model_family": "flux2"}
                              | overrides))

    return make


def _generate(pipe):
    return pipe(prompt="a photo of sks toy", num_inference_steps=2, guidance_scale=1.0, height=64, width=64,
                max_sequence_length=32, output_type="np", generator=torch.Generator().manual_seed(0)).images


def _stock_pipeline(tiny_models):
    from diffusers import Flux2KleinPipeline

    return Flux2KleinPipeline.from_pretrained(tiny_models["flux2"])


def test_samples_carry_three_layer_qwen3_states_and_normalised_latents(flux2_samples):
    sample = flux2_samples[0]
    assert sample.prompt_embeds.shape[-2:] == (32, 48) and sample.pooled_prompt_embeds is None
    assert sample.latents.shape[-3:] == (16, 32, 32)


def test_diffusers_lora_loads_into_flux2_klein_pipeline_and_changes_its_output(flux2_config, flux2_samples,
                                                                                 tiny_models, tmp_path):
    config = flux2_config(max_train_steps=3, lora_alpha=8, learning_rate=5e-2, use_ema=True)
    store, result = _train(config, flux2_samples, tmp_path)
    assert result.details["family"] == "flux2" and result.details["prediction_type"] == "flow_matching"
    assert set(result.details["exports"]) == set(result.details["ema_exports"]) == {"diffusers_lora"}
    pipe = _stock_pipeline(tiny_models)
    before = _generate(pipe)
    pipe.load_lora_weights(store.path(f"train/{result.key}/export/diffusers"),
                           weight_name="pytorch_lora_weights.safetensors")
    assert abs(_generate(pipe) - before).max() > 1e-3
    saved = load_file(store.path(f"train/{result.key}/export/diffusers/pytorch_lora_weights.safetensors"))
    assert saved and all(k.startswith("transformer.") for k in saved)
    # SimpleTuner's default targets: both block kinds (double blocks' attention, single blocks' fused projection).
    assert any(".attn.to_qkv_mlp_proj." in k for k in saved) and any(".attn.to_q." in k for k in saved)
    assert "Flux2KleinPipeline.load_lora_weights" in store.read_bytes(f"train/{result.key}/README.md").decode()


def test_lycoris_and_full_fine_tunes_export(flux2_config, flux2_samples, tiny_models, tmp_path, lycoris_file):
    from diffusers import Flux2KleinPipeline
    from lycoris import create_lycoris_from_weights

    spec = {"algo": "lokr", "linear_dim": 10000, "linear_alpha": 1, "factor": 4}
    config = flux2_config(max_train_steps=2, learning_rate=5e-2, lora_type="lycoris", lycoris_config=lycoris_file(spec))
    store, result = _train(config, flux2_samples, tmp_path / "lycoris")
    pipe = _stock_pipeline(tiny_models)
    before = _generate(pipe)
    network, _ = create_lycoris_from_weights(1.0, store.path(f"train/{result.key}/export/lycoris/lycoris.safetensors"),
                                             pipe.transformer)
    network.apply_to()
    assert len(network.loras) == result.counts["wrapped_modules"]
    assert abs(_generate(pipe) - before).max() > 1e-4

    config = flux2_config(max_train_steps=2, learning_rate=1e-3, model_type="full")
    store, result = _train(config, flux2_samples, tmp_path / "full")
    trained = Flux2KleinPipeline.from_pretrained(store.path(f"train/{result.key}/export/pipeline"))
    network.restore()
    assert abs(_generate(trained) - _generate(pipe)).max() > 1e-4


def test_resume_is_exact(flux2_config, flux2_samples, make_trainer, crash_and_resume, tmp_path,
                         assert_resumed_exactly):
    """A crash after step 3 with checkpoints every 2 resumes at 2 and ends equal (EMA, accumulation, dropout)."""
    config = flux2_config(max_train_steps=4, checkpointing_steps=2, lora_dropout=0.1, use_ema=True,
                          lr_scheduler="cosine", lr_warmup_steps=1, gradient_accumulation_steps=2)
    straight = make_trainer(config, flux2_samples, store=ArtifactStore(str(tmp_path / "a")))
    straight_outcome = straight.train()
    resumed, outcome = crash_and_resume(config, flux2_samples)
    assert_resumed_exactly(straight, straight_outcome, resumed, outcome)


def test_prior_preservation_trains_and_ddpm_only_features_are_refused(flux2_config, flux2_samples, make_trainer):
    """Prior preservation on the base prediction trains (flow matching); min-SNR and the base/refiner split are
    refused by key, as is validation_guidance_rescale (Flux.2's pipelines take none)."""
    trainer = make_trainer(flux2_config(max_train_steps=2, prior_preservation_target="base_prediction"), flux2_samples)
    outcome = trainer.train()
    assert outcome.steps_run == 2 and all(torch.isfinite(torch.tensor(e["loss"])) for e in outcome.history)
    with pytest.raises(ValueError, match="snr_gamma.*flux2"):
        make_trainer(flux2_config(snr_gamma=5.0), flux2_samples)
    with pytest.raises(ValueError, match="refiner_training.*flux2"):
        make_trainer(flux2_config(refiner_training=True), flux2_samples)
    with pytest.raises(ValueError, match="validation_guidance_rescale.*Flux2KleinPipeline"):
        make_trainer(flux2_config(validation_guidance_rescale=0.7), flux2_samples)


def test_dev_lora_trains_with_guidance_and_loads_into_flux2_pipeline(make_config, tiny_models, tmp_path):
    """The dev shape (Flux2Pipeline, Mistral-3 states, a guidance embedding the trainer feeds 1.0) trains, and its
    LoRA loads with Flux2Pipeline.load_lora_weights and changes the output."""
    from diffusers import Flux2Pipeline

    from dreamcore.train.memory import demo_samples

    with torch_threads(1):
        samples = demo_samples(tiny_models["flux2-dev"], tmp_path / "data", subjects=2, regularisation=0)
    assert samples[0].prompt_embeds.shape[-2:] == (32, 48)
    config = make_config(pretrained_model_name_or_path=str(tiny_models["flux2-dev"]), model_family="flux2",
                         max_train_steps=2, lora_alpha=8, learning_rate=5e-2)
    store, result = _train(config, samples, tmp_path / "train")
    assert result.details["family"] == "flux2"
    pipe = Flux2Pipeline.from_pretrained(tiny_models["flux2-dev"])
    assert pipe.transformer.config.guidance_embeds
    before = _generate(pipe)
    pipe.load_lora_weights(store.path(f"train/{result.key}/export/diffusers"),
                           weight_name="pytorch_lora_weights.safetensors")
    assert abs(_generate(pipe) - before).max() > 1e-3
