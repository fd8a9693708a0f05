"""Kolors through the train stage on its tiny model: the diffusers LoRA loads with stock
`KolorsPipeline.load_lora_weights` and changes the output, LyCORIS and full fine-tunes export, and a crashed
run resumes exactly."""

from __future__ import annotations

import pytest
import torch

from tests.conftest import torch_threads
from tests.dreamcore.train.family_checks import check_diffusers_lora, check_lycoris_and_full, check_resume_is_exact


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
    check_diffusers_lora(kolors_config(max_train_steps=3, lora_alpha=8, learning_rate=5e-2, use_ema=True),
                         kolors_samples, tmp_path, lambda: _stock_pipeline(tiny_models), _generate, "epsilon")


def test_lycoris_and_full_fine_tunes_export(kolors_config, kolors_samples, tiny_models, tmp_path, lycoris_file):
    check_lycoris_and_full(kolors_config, kolors_samples, tmp_path, lambda: _stock_pipeline(tiny_models), _generate,
                           lycoris_file)


def test_resume_is_exact(kolors_config, kolors_samples, make_trainer, crash_and_resume, tmp_path,
                         assert_resumed_exactly):
    check_resume_is_exact(kolors_config, kolors_samples, make_trainer, crash_and_resume, assert_resumed_exactly,
                          tmp_path)


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
