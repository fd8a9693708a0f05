"""Qwen-Image through the train stage on its tiny model: the diffusers LoRA loads with stock
`QwenImagePipeline.load_lora_weights` and changes the output, LyCORIS and full fine-tunes export, a crashed run
resumes exactly, and the flow-matching refusals name their keys."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from dreamcore.storage import ArtifactStore
from tests.conftest import torch_threads
from tests.dreamcore.train.test_train_dit_export import _train


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
    config = qwen_config(max_train_steps=3, lora_alpha=8, learning_rate=5e-2, use_ema=True)
    store, result = _train(config, qwen_samples, tmp_path)
    assert result.details["family"] == "qwen_image" and result.details["prediction_type"] == "flow_matching"
    assert set(result.details["exports"]) == set(result.details["ema_exports"]) == {"diffusers_lora"}
    pipe = _stock_pipeline(tiny_models)
    before = _generate(pipe)
    pipe.load_lora_weights(store.path(f"train/{result.key}/export/diffusers"),
                           weight_name="pytorch_lora_weights.safetensors")
    assert abs(_generate(pipe) - before).max() > 1e-3
    saved = load_file(store.path(f"train/{result.key}/export/diffusers/pytorch_lora_weights.safetensors"))
    assert saved and all(k.startswith("transformer.") for k in saved)
    assert "QwenImagePipeline.load_lora_weights" in store.read_bytes(f"train/{result.key}/README.md").decode()


def test_lycoris_and_full_fine_tunes_export(qwen_config, qwen_samples, tiny_models, tmp_path, lycoris_file):
    from diffusers import QwenImagePipeline
    from lycoris import create_lycoris_from_weights

    spec = {"algo": "lokr", "linear_dim": 10000, "linear_alpha": 1, "factor": 4}
    config = qwen_config(max_train_steps=2, learning_rate=5e-2, lora_type="lycoris", lycoris_config=lycoris_file(spec))
    store, result = _train(config, qwen_samples, tmp_path / "lycoris")
    pipe = _stock_pipeline(tiny_models)
    before = _generate(pipe)
    network, _ = create_lycoris_from_weights(1.0, store.path(f"train/{result.key}/export/lycoris/lycoris.safetensors"),
                                             pipe.transformer)
    network.apply_to()
    assert len(network.loras) == result.counts["wrapped_modules"]
    assert abs(_generate(pipe) - before).max() > 1e-4

    config = qwen_config(max_train_steps=2, learning_rate=1e-3, model_type="full")
    store, result = _train(config, qwen_samples, tmp_path / "full")
    trained = QwenImagePipeline.from_pretrained(store.path(f"train/{result.key}/export/pipeline"))
    network.restore()
    assert abs(_generate(trained) - _generate(pipe)).max() > 1e-4


def test_resume_is_exact(qwen_config, qwen_samples, make_trainer, crash_and_resume, tmp_path, assert_resumed_exactly):
    """A crash after step 3 with checkpoints every 2 resumes at 2 and ends equal (EMA, accumulation, dropout)."""
    config = qwen_config(max_train_steps=4, checkpointing_steps=2, lora_dropout=0.1, use_ema=True,
                         lr_scheduler="cosine", lr_warmup_steps=1, gradient_accumulation_steps=2)
    straight = make_trainer(config, qwen_samples, store=ArtifactStore(str(tmp_path / "a")))
    straight_outcome = straight.train()
    resumed, outcome = crash_and_resume(config, qwen_samples)
    assert_resumed_exactly(straight, straight_outcome, resumed, outcome)


def test_flow_matching_features_train_and_ddpm_only_ones_are_refused(qwen_config, qwen_samples, make_trainer):
    """Qwen-Image's resolution-dependent shift and prior preservation train; min-SNR is refused by key."""
    config = qwen_config(max_train_steps=2, flow_schedule_auto_shift=True,
                         prior_preservation_target="base_prediction")
    outcome = make_trainer(config, qwen_samples).train()
    assert outcome.steps_run == 2 and all(torch.isfinite(torch.tensor(e["loss"])) for e in outcome.history)
    with pytest.raises(ValueError, match="snr_gamma.*qwen_image"):
        make_trainer(qwen_config(snr_gamma=5.0), qwen_samples)
