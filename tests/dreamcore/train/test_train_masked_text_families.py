"""Chroma and Lumina2 through the train stage on their tiny models: the diffusers LoRA loads with the stock
pipeline's `load_lora_weights` and changes its output, LyCORIS and full fine-tunes export, and a crashed run resumes
exactly. (Each family's own call and captions: test_train_chroma.py, test_train_lumina2.py.)"""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from dreamcore.models import family_named, load_pipeline
from dreamcore.storage import ArtifactStore
from tests.dreamcore.train.conftest import MASKED_TEXT_TOKENS
from tests.dreamcore.train.test_train_dit_export import _train

FAMILIES = ("chroma", "lumina2")


def _generate(pipe):
    return pipe("a photo of sks toy", num_inference_steps=2, guidance_scale=1.0, height=64, width=64,
                max_sequence_length=MASKED_TEXT_TOKENS, output_type="np",
                generator=torch.Generator().manual_seed(0)).images


@pytest.mark.parametrize("family", FAMILIES)
def test_diffusers_lora_loads_into_the_stock_pipeline_and_changes_its_output(family, masked_text_config,
                                                                             masked_text_samples, tiny_models,
                                                                             tmp_path):
    config = masked_text_config(family, max_train_steps=3, lora_alpha=8, learning_rate=5e-2, use_ema=True)
    store, result = _train(config, masked_text_samples(family), tmp_path)
    assert result.details["family"] == family and result.details["prediction_type"] == "flow_matching"
    assert set(result.details["exports"]) == set(result.details["ema_exports"]) == {"diffusers_lora"}
    pipe = load_pipeline(tiny_models[family])
    before = _generate(pipe)
    pipe.load_lora_weights(store.path(f"train/{result.key}/export/diffusers"),
                           weight_name="pytorch_lora_weights.safetensors")
    assert abs(_generate(pipe) - before).max() > 1e-3
    saved = load_file(store.path(f"train/{result.key}/export/diffusers/pytorch_lora_weights.safetensors"))
    assert saved and all(k.startswith("transformer.") for k in saved)
    readme = store.read_bytes(f"train/{result.key}/README.md").decode()
    assert f"{family_named(family).pipeline_class}.load_lora_weights" in readme


@pytest.mark.parametrize("family", FAMILIES)
def test_lycoris_and_full_fine_tunes_export(family, masked_text_config, masked_text_samples, tiny_models, tmp_path,
                                            lycoris_file):
    from lycoris import create_lycoris_from_weights

    spec = {"algo": "lokr", "linear_dim": 10000, "linear_alpha": 1, "factor": 4}
    config = masked_text_config(family, max_train_steps=2, learning_rate=5e-2, lora_type="lycoris",
                                lycoris_config=lycoris_file(spec))
    store, result = _train(config, masked_text_samples(family), tmp_path / "lycoris")
    pipe = load_pipeline(tiny_models[family])
    before = _generate(pipe)
    network, _ = create_lycoris_from_weights(1.0, store.path(f"train/{result.key}/export/lycoris/lycoris.safetensors"),
                                             pipe.transformer)
    network.apply_to()
    assert len(network.loras) == result.counts["wrapped_modules"]
    assert abs(_generate(pipe) - before).max() > 1e-4

    config = masked_text_config(family, max_train_steps=2, learning_rate=1e-3, model_type="full")
    store, result = _train(config, masked_text_samples(family), tmp_path / "full")
    trained = load_pipeline(store.path(f"train/{result.key}/export/pipeline"))
    assert type(trained).__name__ == family_named(family).pipeline_class
    network.restore()
    assert abs(_generate(trained) - _generate(pipe)).max() > 1e-4


@pytest.mark.parametrize("family", FAMILIES)
def test_resume_is_exact(family, masked_text_config, masked_text_samples, make_trainer, crash_and_resume, tmp_path,
                         assert_resumed_exactly):
    """A crash after step 3 with checkpoints every 2 resumes at 2 and ends equal (EMA, accumulation, dropout)."""
    config = masked_text_config(family, max_train_steps=4, checkpointing_steps=2, lora_dropout=0.1, use_ema=True,
                                lr_scheduler="cosine", lr_warmup_steps=1, gradient_accumulation_steps=2)
    straight = make_trainer(config, masked_text_samples(family), store=ArtifactStore(str(tmp_path / "a")))
    straight_outcome = straight.train()
    resumed, outcome = crash_and_resume(config, masked_text_samples(family))
    assert_resumed_exactly(straight, straight_outcome, resumed, outcome)
