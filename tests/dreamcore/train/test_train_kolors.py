"""Kolors through the train stage on its tiny model: the diffusers LoRA loads with stock
`KolorsPipeline.load_lora_weights` and changes the output, LyCORIS and full fine-tunes export, and a crashed
run resumes exactly."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from dreamcore.storage import ArtifactStore
from tests.conftest import torch_threads
from tests.dreamcore.train.test_train_dit_export import _train


@pytest.fixture(scope="module")
def kolors_samples(tiny_models, tmp_path_factory):
    """4 subject samples (with masks) + 2 regularisation samples: ChatGLM3 states [256, 32] and pooled [32],
    SDXL size ids, 32x32x4 latents."""
    from dreamcore.train.memory import demo_samples

    with torch_threads(1):
        return demo_samples(tiny_models["kolors"], tmp_path_factory.mktemp("train-demo-kolors"))


@pytest.fixture
def kolors_config(make_config, tiny_models):
    """TrainingConfig factory for the tiny Kolors (CPU fp32, batch 2, 4 steps, checkpoints every 2)."""
    def make(**overrides):
        return make_config(**({"pretrained_model_name_or_path": str(tiny_models["kolors"]), "model_family": "kolors"}
                              | overrides))

    return make


def _generate(pipe):
    return pipe("a photo of sks toy", num_inference_steps=2, guidance_scale=1.0, height=64, width=64,
                output_type="np", generator=torch.Generator().manual_seed(0)).images


def _stock_pipeline(tiny_models):
    from diffusers import KolorsPipeline

    return KolorsPipeline.from_pretrained(tiny_models["kolors"])


def test_samples_carry_chatglm_states_and_sdxl_time_ids(kolors_samples):
    sample = kolors_samples[0]
    assert sample.prompt_embeds.shape[-2:] == (256, 32) and sample.pooled_prompt_embeds.shape[-1] == 32
    assert sample.time_ids.shape[-1] == 6 and sample.latents.shape[-3:] == (4, 32, 32)


def test_diffusers_lora_loads_into_kolors_pipeline_and_changes_its_output(kolors_config, kolors_samples, tiny_models,
                                                                          tmp_path):
    config = kolors_config(max_train_steps=3, lora_alpha=8, learning_rate=5e-2, use_ema=True)
    store, result = _train(config, kolors_samples, tmp_path)
    assert result.details["family"] == "kolors" and result.details["prediction_type"] == "epsilon"
    assert set(result.details["exports"]) == set(result.details["ema_exports"]) == {"diffusers_lora"}
    pipe = _stock_pipeline(tiny_models)
    before = _generate(pipe)
    pipe.load_lora_weights(store.path(f"train/{result.key}/export/diffusers"),
                           weight_name="pytorch_lora_weights.safetensors")
    assert abs(_generate(pipe) - before).max() > 1e-3
    saved = load_file(store.path(f"train/{result.key}/export/diffusers/pytorch_lora_weights.safetensors"))
    assert saved and all(k.startswith("unet.") for k in saved)
    assert "KolorsPipeline.load_lora_weights" in store.read_bytes(f"train/{result.key}/README.md").decode()


def test_lycoris_and_full_fine_tunes_export(kolors_config, kolors_samples, tiny_models, tmp_path, lycoris_file):
    from diffusers import KolorsPipeline
    from lycoris import create_lycoris_from_weights

    spec = {"algo": "lokr", "linear_dim": 10000, "linear_alpha": 1, "factor": 4}
    config = kolors_config(max_train_steps=2, learning_rate=5e-2, lora_type="lycoris", lycoris_config=lycoris_file(spec))
    store, result = _train(config, kolors_samples, tmp_path / "lycoris")
    pipe = _stock_pipeline(tiny_models)
    before = _generate(pipe)
    network, _ = create_lycoris_from_weights(1.0, store.path(f"train/{result.key}/export/lycoris/lycoris.safetensors"),
                                             pipe.unet)
    network.apply_to()
    assert len(network.loras) == result.counts["wrapped_modules"]
    assert abs(_generate(pipe) - before).max() > 1e-4

    config = kolors_config(max_train_steps=2, learning_rate=1e-3, model_type="full")
    store, result = _train(config, kolors_samples, tmp_path / "full")
    trained = KolorsPipeline.from_pretrained(store.path(f"train/{result.key}/export/pipeline"))
    network.restore()
    assert abs(_generate(trained) - _generate(pipe)).max() > 1e-4


def test_resume_is_exact(kolors_config, kolors_samples, make_trainer, crash_and_resume, tmp_path,
                         assert_resumed_exactly):
    """A crash after step 3 with checkpoints every 2 resumes at 2 and ends equal (EMA, accumulation, dropout)."""
    config = kolors_config(max_train_steps=4, checkpointing_steps=2, lora_dropout=0.1, use_ema=True,
                           lr_scheduler="cosine", lr_warmup_steps=1, gradient_accumulation_steps=2)
    straight = make_trainer(config, kolors_samples, store=ArtifactStore(str(tmp_path / "a")))
    straight_outcome = straight.train()
    resumed, outcome = crash_and_resume(config, kolors_samples)
    assert_resumed_exactly(straight, straight_outcome, resumed, outcome)


def test_ddpm_features_train_and_sdxl_only_ones_are_refused(kolors_config, kolors_samples, make_trainer):
    """min-SNR, scheduled sampling and prior preservation train (a DDPM UNet family, 1100 steps); the base/refiner
    split and validation_guidance_rescale (KolorsPipeline takes none) are refused by key."""
    config = kolors_config(max_train_steps=2, snr_gamma=5.0, scheduled_sampling_max_step_offset=3,
                           scheduled_sampling_probability=1.0, prior_preservation_target="base_prediction")
    trainer = make_trainer(config, kolors_samples)
    assert trainer.base.noise_scheduler.config.num_train_timesteps == 1100
    outcome = trainer.train()
    assert outcome.steps_run == 2 and all(torch.isfinite(torch.tensor(e["loss"])) for e in outcome.history)
    with pytest.raises(ValueError, match="refiner_training.*kolors"):
        make_trainer(kolors_config(refiner_training=True), kolors_samples)
    with pytest.raises(ValueError, match="validation_guidance_rescale.*KolorsPipeline"):
        make_trainer(kolors_config(validation_guidance_rescale=0.7), kolors_samples)
