"""Lumina2 through the train stage on its tiny model: the prediction is Lumina2Pipeline's own transformer call
(t = 1 - sigma, Gemma's mask) negated into flow matching's target; the diffusers LoRA loads with stock
`Lumina2Pipeline.load_lora_weights` and changes the output; LyCORIS and full fine-tunes export; a crashed run
resumes exactly."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from dreamcore.models.families.denoisers import Conditioning
from dreamcore.storage import ArtifactStore
from tests.conftest import torch_threads
from tests.dreamcore.train.test_train_dit_export import _train
from tests.dreamcore.train.test_train_dit_predict import _stock_first_call

GEMMA_TOKENS = 64  # the tiny tokenizer spells the system prompt in 32 tokens, and a demo caption after it


@pytest.fixture(scope="module")
def lumina2_samples(tiny_models, tmp_path_factory):
    """4 subject samples (with masks) + 2 regularisation samples: Gemma2 states [32, 32] of the system prompt and
    caption (64 tokens: the system prompt alone is 32) with Gemma's mask, no pooled text, 8x8x16 latents."""
    from dreamcore.train.memory import demo_samples

    with torch_threads(1):
        return demo_samples(tiny_models["lumina2"], tmp_path_factory.mktemp("train-demo-lumina2"),
                            max_sequence_length=GEMMA_TOKENS)


@pytest.fixture
def lumina2_config(make_config, tiny_models):
    """TrainingConfig factory for the tiny Lumina2 (CPU fp32, batch 2, 4 steps, checkpoints every 2)."""
    def make(**overrides):
        return make_config(**({"pretrained_model_name_or_path": str(tiny_models["lumina2"]),
                               "model_family": "lumina2"} | overrides))

    return make


def _stock_pipeline(tiny_models):
    from diffusers import Lumina2Pipeline

    return Lumina2Pipeline.from_pretrained(tiny_models["lumina2"])


def _generate(pipe):
    return pipe("a photo of sks toy", num_inference_steps=2, guidance_scale=1.0, height=64, width=64,
                max_sequence_length=GEMMA_TOKENS, output_type="np", generator=torch.Generator().manual_seed(0)).images


def test_samples_carry_gemma_states_of_the_system_prompt_and_caption(lumina2_samples):
    sample = lumina2_samples[0]
    assert sample.prompt_embeds.shape[-2:] == (GEMMA_TOKENS, 32) and sample.pooled_prompt_embeds is None
    assert sample.latents.shape[-3:] == (16, 8, 8)
    mask = sample.prompt_attention_mask[0]
    real = int(mask.sum())
    assert 32 < real < GEMMA_TOKENS and mask[:real].all()  # the system prompt, the caption, then padding


def test_prediction_is_the_stock_pipeline_call_negated(tiny_models, lumina2_config, make_trainer, lumina2_samples):
    pipe = _stock_pipeline(tiny_models)
    kwargs, stock = _stock_first_call(pipe, GEMMA_TOKENS, guidance_scale=1.0)
    trainer = make_trainer(lumina2_config(), lumina2_samples)
    assert not kwargs["encoder_attention_mask"].all()  # padding is masked out in the stock call
    conditioning = Conditioning(kwargs["encoder_hidden_states"], attention_mask=kwargs["encoder_attention_mask"].bool())
    sigma = 1 - kwargs["timestep"]  # the pipeline hands Lumina's reversed time
    with torch.no_grad():  # a fresh LoRA (B = 0) predicts like the base
        ours = trainer.model(kwargs["hidden_states"], sigma * 1000, conditioning)
    assert ours.shape == (1, 16, 8, 8)
    assert torch.allclose(ours, -stock, atol=1e-5)


def test_diffusers_lora_loads_into_lumina2_pipeline_and_changes_its_output(lumina2_config, lumina2_samples,
                                                                           tiny_models, tmp_path):
    config = lumina2_config(max_train_steps=3, lora_alpha=8, learning_rate=5e-2, use_ema=True)
    store, result = _train(config, lumina2_samples, tmp_path)
    assert result.details["family"] == "lumina2" and result.details["prediction_type"] == "flow_matching"
    assert set(result.details["exports"]) == set(result.details["ema_exports"]) == {"diffusers_lora"}
    pipe = _stock_pipeline(tiny_models)
    before = _generate(pipe)
    pipe.load_lora_weights(store.path(f"train/{result.key}/export/diffusers"),
                           weight_name="pytorch_lora_weights.safetensors")
    assert abs(_generate(pipe) - before).max() > 1e-3
    saved = load_file(store.path(f"train/{result.key}/export/diffusers/pytorch_lora_weights.safetensors"))
    assert saved and all(k.startswith("transformer.") for k in saved)
    assert "Lumina2Pipeline.load_lora_weights" in store.read_bytes(f"train/{result.key}/README.md").decode()


def test_lycoris_and_full_fine_tunes_export(lumina2_config, lumina2_samples, tiny_models, tmp_path, lycoris_file):
    from diffusers import Lumina2Pipeline
    from lycoris import create_lycoris_from_weights

    spec = {"algo": "lokr", "linear_dim": 10000, "linear_alpha": 1, "factor": 4}
    config = lumina2_config(max_train_steps=2, learning_rate=5e-2, lora_type="lycoris",
                            lycoris_config=lycoris_file(spec))
    store, result = _train(config, lumina2_samples, tmp_path / "lycoris")
    pipe = _stock_pipeline(tiny_models)
    before = _generate(pipe)
    network, _ = create_lycoris_from_weights(1.0, store.path(f"train/{result.key}/export/lycoris/lycoris.safetensors"),
                                             pipe.transformer)
    network.apply_to()
    assert len(network.loras) == result.counts["wrapped_modules"]
    assert abs(_generate(pipe) - before).max() > 1e-4

    config = lumina2_config(max_train_steps=2, learning_rate=1e-3, model_type="full")
    store, result = _train(config, lumina2_samples, tmp_path / "full")
    trained = Lumina2Pipeline.from_pretrained(store.path(f"train/{result.key}/export/pipeline"))
    network.restore()
    assert abs(_generate(trained) - _generate(pipe)).max() > 1e-4


def test_resume_is_exact(lumina2_config, lumina2_samples, make_trainer, crash_and_resume, tmp_path,
                         assert_resumed_exactly):
    """A crash after step 3 with checkpoints every 2 resumes at 2 and ends equal (EMA, accumulation, dropout)."""
    config = lumina2_config(max_train_steps=4, checkpointing_steps=2, lora_dropout=0.1, use_ema=True,
                            lr_scheduler="cosine", lr_warmup_steps=1, gradient_accumulation_steps=2)
    straight = make_trainer(config, lumina2_samples, store=ArtifactStore(str(tmp_path / "a")))
    straight_outcome = straight.train()
    resumed, outcome = crash_and_resume(config, lumina2_samples)
    assert_resumed_exactly(straight, straight_outcome, resumed, outcome)
