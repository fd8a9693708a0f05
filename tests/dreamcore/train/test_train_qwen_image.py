"""Qwen-Image through the train stage on its tiny model: the diffusers LoRA loads with stock
`QwenImagePipeline.load_lora_weights` and changes the output, LyCORIS and full fine-tunes export, a crashed run
resumes exactly, and the flow-matching refusals name their keys."""

from __future__ import annotations

import pytest
import torch

from tests.conftest import torch_threads
from tests.dreamcore.train.family_checks import check_diffusers_lora, check_lycoris_and_full, check_resume_is_exact


@pytest.fixture(scope="module")
def qwen_samples(tiny_models, tmp_path_factory):
    """4 subject samples (with masks) + 2 regularisation samples: Qwen2.5-VL states [L, 32] of each caption's own
    length with their mask, normalised 32x32x16 latents."""
    from dreamcore.train.memory import demo_samples

    with torch_threads(1):
        return demo_samples(tiny_models["qwen_image"], tmp_path_factory.mktemp("train-demo-qwen"))


@pytest.fixture
def qwen_config(make_config, tiny_models):
    """TrainingConfig factory for the tiny Qwen-Image (CPU fp32, batch 2, 4 steps, checkpoints every 2)."""
    def make(**overrides):
        return make_config(**({"pretrained_model_name_or_path": str(tiny_models["qwen_image"]),
                               "model_family": "qwen_image"} | overrides))

    return make


def _generate(pipe):
    return pipe("a photo of sks toy", num_inference_steps=2, height=64, width=64, output_type="np",
                generator=torch.Generator().manual_seed(0)).images


def _stock_pipeline(tiny_models):
    from diffusers import QwenImagePipeline

    return QwenImagePipeline.from_pretrained(tiny_models["qwen_image"])


def test_samples_carry_masked_qwen_states_and_normalised_latents(qwen_samples):
    sample = qwen_samples[0]
    assert sample.prompt_embeds.shape[-1] == 32 and sample.latents.shape[-3:] == (16, 32, 32)
    assert sample.prompt_attention_mask.shape == sample.prompt_embeds.shape[:2] and sample.prompt_attention_mask.all()


def test_diffusers_lora_loads_into_qwen_image_pipeline_and_changes_its_output(qwen_config, qwen_samples, tiny_models,
                                                                              tmp_path):
    check_diffusers_lora(qwen_config(max_train_steps=3, lora_alpha=8, learning_rate=5e-2, use_ema=True), qwen_samples,
                         tmp_path, lambda: _stock_pipeline(tiny_models), _generate, "flow_matching")


def test_lycoris_and_full_fine_tunes_export(qwen_config, qwen_samples, tiny_models, tmp_path, lycoris_file):
    check_lycoris_and_full(qwen_config, qwen_samples, tmp_path, lambda: _stock_pipeline(tiny_models), _generate,
                           lycoris_file)


def test_resume_is_exact(qwen_config, qwen_samples, make_trainer, crash_and_resume, tmp_path, assert_resumed_exactly):
    check_resume_is_exact(qwen_config, qwen_samples, make_trainer, crash_and_resume, assert_resumed_exactly, tmp_path)


def test_flow_matching_features_train_and_ddpm_only_ones_are_refused(qwen_config, qwen_samples, make_trainer):
    """Qwen-Image's resolution-dependent shift and prior preservation train; min-SNR is refused by key."""
    config = qwen_config(max_train_steps=2, flow_schedule_auto_shift=True,
                         prior_preservation_target="base_prediction")
    outcome = make_trainer(config, qwen_samples).train()
    assert outcome.steps_run == 2 and all(torch.isfinite(torch.tensor(e["loss"])) for e in outcome.history)
    with pytest.raises(ValueError, match="snr_gamma.*qwen_image"):
        make_trainer(qwen_config(snr_gamma=5.0), qwen_samples)
