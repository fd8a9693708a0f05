"""Chroma through the train stage on its tiny model: the prediction equals ChromaPipeline's own transformer call
(Flux's packing, timestep / 1000, the T5 mask with its first padding token); the diffusers LoRA loads with stock
`ChromaPipeline.load_lora_weights` and changes the output; LyCORIS and full fine-tunes export; a crashed run resumes
exactly; Flux's guidance keys are refused and the default sigmas take SimpleTuner's Chroma reshaping."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from dreamcore.models.families.denoisers import Conditioning
from dreamcore.storage import ArtifactStore
from tests.conftest import torch_threads
from tests.dreamcore.train.test_train_dit_export import _train
from tests.dreamcore.train.test_train_dit_predict import _stock_first_call


@pytest.fixture(scope="module")
def chroma_samples(tiny_models, tmp_path_factory):
    """4 subject samples (with masks) + 2 regularisation samples: T5 states [32, 32] and ChromaPipeline's mask
    [32], no pooled text, 32x32x16 latents."""
    from dreamcore.train.memory import demo_samples

    with torch_threads(1):
        return demo_samples(tiny_models["chroma"], tmp_path_factory.mktemp("train-demo-chroma"))


@pytest.fixture
def chroma_config(make_config, tiny_models):
    """TrainingConfig factory for the tiny Chroma (CPU fp32, batch 2, 4 steps, checkpoints every 2)."""
    def make(**overrides):
        return make_config(**({"pretrained_model_name_or_path": str(tiny_models["chroma"]), "model_family": "chroma"}
                              | overrides))

    return make


def _stock_pipeline(tiny_models):
    from diffusers import ChromaPipeline

    return ChromaPipeline.from_pretrained(tiny_models["chroma"])


def _generate(pipe):
    return pipe("a photo of sks toy", num_inference_steps=2, guidance_scale=1.0, height=64, width=64,
                max_sequence_length=32, output_type="np", generator=torch.Generator().manual_seed(0)).images


def test_samples_carry_t5_states_and_the_pipelines_mask(chroma_samples):
    sample = chroma_samples[0]
    assert sample.prompt_embeds.shape[-2:] == (32, 32) and sample.pooled_prompt_embeds is None
    assert sample.latents.shape[-3:] == (16, 32, 32)
    mask = sample.prompt_attention_mask[0]
    real = int(mask.sum()) - 1  # ChromaPipeline keeps the first padding token
    assert mask[: real + 1].all() and not mask[real + 1:].any()


def test_prediction_equals_the_stock_pipeline_call(tiny_models, chroma_config, make_trainer, chroma_samples):
    from diffusers import ChromaPipeline

    pipe = _stock_pipeline(tiny_models)
    kwargs, stock = _stock_first_call(pipe, guidance_scale=1.0)
    trainer = make_trainer(chroma_config(), chroma_samples)
    text_length = kwargs["encoder_hidden_states"].shape[1]
    assert not kwargs["attention_mask"][0, :text_length].all()  # padding is masked out in the stock call
    conditioning = Conditioning(kwargs["encoder_hidden_states"], attention_mask=kwargs["attention_mask"][:, :text_length])
    noisy = ChromaPipeline._unpack_latents(kwargs["hidden_states"], 64, 64, pipe.vae_scale_factor)
    with torch.no_grad():  # a fresh LoRA (B = 0) predicts like the base
        ours = trainer.model(noisy, kwargs["timestep"] * 1000, conditioning)
    assert torch.allclose(ours, ChromaPipeline._unpack_latents(stock, 64, 64, pipe.vae_scale_factor), atol=1e-5)


def test_diffusers_lora_loads_into_chroma_pipeline_and_changes_its_output(chroma_config, chroma_samples, tiny_models,
                                                                          tmp_path):
    config = chroma_config(max_train_steps=3, lora_alpha=8, learning_rate=5e-2, use_ema=True)
    store, result = _train(config, chroma_samples, tmp_path)
    assert result.details["family"] == "chroma" and result.details["prediction_type"] == "flow_matching"
    assert set(result.details["exports"]) == set(result.details["ema_exports"]) == {"diffusers_lora"}
    pipe = _stock_pipeline(tiny_models)
    before = _generate(pipe)
    pipe.load_lora_weights(store.path(f"train/{result.key}/export/diffusers"),
                           weight_name="pytorch_lora_weights.safetensors")
    assert abs(_generate(pipe) - before).max() > 1e-3
    saved = load_file(store.path(f"train/{result.key}/export/diffusers/pytorch_lora_weights.safetensors"))
    assert saved and all(k.startswith("transformer.") for k in saved)
    assert any(".add_q_proj." in k for k in saved)  # flux_lora_target "all": both streams' attention
    assert "ChromaPipeline.load_lora_weights" in store.read_bytes(f"train/{result.key}/README.md").decode()


def test_lycoris_and_full_fine_tunes_export(chroma_config, chroma_samples, tiny_models, tmp_path, lycoris_file):
    from diffusers import ChromaPipeline
    from lycoris import create_lycoris_from_weights

    spec = {"algo": "lokr", "linear_dim": 10000, "linear_alpha": 1, "factor": 4}
    config = chroma_config(max_train_steps=2, learning_rate=5e-2, lora_type="lycoris", lycoris_config=lycoris_file(spec))
    store, result = _train(config, chroma_samples, tmp_path / "lycoris")
    pipe = _stock_pipeline(tiny_models)
    before = _generate(pipe)
    network, _ = create_lycoris_from_weights(1.0, store.path(f"train/{result.key}/export/lycoris/lycoris.safetensors"),
                                             pipe.transformer)
    network.apply_to()
    assert len(network.loras) == result.counts["wrapped_modules"]
    assert abs(_generate(pipe) - before).max() > 1e-4

    config = chroma_config(max_train_steps=2, learning_rate=1e-3, model_type="full")
    store, result = _train(config, chroma_samples, tmp_path / "full")
    trained = ChromaPipeline.from_pretrained(store.path(f"train/{result.key}/export/pipeline"))
    network.restore()
    assert abs(_generate(trained) - _generate(pipe)).max() > 1e-4


def test_resume_is_exact(chroma_config, chroma_samples, make_trainer, crash_and_resume, tmp_path,
                         assert_resumed_exactly):
    """A crash after step 3 with checkpoints every 2 resumes at 2 and ends equal (EMA, accumulation, dropout)."""
    config = chroma_config(max_train_steps=4, checkpointing_steps=2, lora_dropout=0.1, use_ema=True,
                           lr_scheduler="cosine", lr_warmup_steps=1, gradient_accumulation_steps=2)
    straight = make_trainer(config, chroma_samples, store=ArtifactStore(str(tmp_path / "a")))
    straight_outcome = straight.train()
    resumed, outcome = crash_and_resume(config, chroma_samples)
    assert_resumed_exactly(straight, straight_outcome, resumed, outcome)


def test_guidance_keys_and_ddpm_features_are_refused_by_key(chroma_config, chroma_samples, make_trainer):
    with pytest.raises(ValueError, match="flux_guidance_value.*chroma model.*no guidance embedding"):
        make_trainer(chroma_config(flux_guidance_value=3.5), chroma_samples)
    with pytest.raises(ValueError, match="snr_gamma.*chroma"):
        make_trainer(chroma_config(snr_gamma=5.0), chroma_samples)


def test_default_sigmas_take_chromas_reshaping_other_schedules_do_not(chroma_config, tiny_models):
    from diffusers import FlowMatchEulerDiscreteScheduler

    from dreamcore.models import family_named
    from dreamcore.models.families.chroma import chroma_sigmas
    from dreamcore.models.families.objectives import flow_sigmas

    objective = family_named("chroma").objective
    scheduler = FlowMatchEulerDiscreteScheduler()
    latents = torch.zeros(64, 16, 4, 4)
    for overrides, warped in (({}, True), ({"flow_use_uniform_schedule": True}, False),
                              ({"flow_use_beta_schedule": True}, False)):
        config = chroma_config(**overrides)
        drawn = objective.draw(config, scheduler, latents, torch.Generator().manual_seed(1), (0, 1000), "")
        generator = torch.Generator().manual_seed(1)
        torch.randn(latents.shape, generator=generator)  # the noise is drawn first
        sigmas = flow_sigmas(config, 64, (4, 4), generator, scheduler.config)
        expected = chroma_sigmas(sigmas) if warped else sigmas
        assert torch.allclose(drawn.timesteps, expected * 1000), overrides
    assert torch.allclose(chroma_sigmas(torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0])),
                          torch.tensor([0.0, 0.0625, 0.75, 0.9375, 1.0]))
