"""Chroma's own training behaviour on its tiny model: the prediction equals ChromaPipeline's own transformer call
(Flux's packing, timestep / 1000, the T5 mask with its first padding token, in the embeddings' dtype); Flux's
guidance keys are refused; the default sigmas take SimpleTuner's Chroma reshaping. (Exports and resume:
test_train_masked_text_families.py.)"""

from __future__ import annotations

import pytest
import torch

from dreamcore.models import load_pipeline
from dreamcore.models.families.denoisers import Conditioning
from tests.dreamcore.train.conftest import MASKED_TEXT_TOKENS
from tests.dreamcore.train.test_train_dit_predict import _stock_first_call


def test_samples_carry_t5_states_and_the_pipelines_mask(masked_text_samples):
    sample = masked_text_samples("chroma")[0]
    assert sample.prompt_embeds.shape[-2:] == (MASKED_TEXT_TOKENS, 32) and sample.pooled_prompt_embeds is None
    assert sample.latents.shape[-3:] == (16, 32, 32)
    mask = sample.prompt_attention_mask[0]
    real = int(mask.sum()) - 1  # ChromaPipeline keeps the first padding token
    assert mask[: real + 1].all() and not mask[real + 1:].any()


def test_prediction_equals_the_stock_pipeline_call(tiny_models, masked_text_config, make_trainer, masked_text_samples):
    from diffusers import ChromaPipeline

    pipe = load_pipeline(tiny_models["chroma"])
    kwargs, stock = _stock_first_call(pipe, guidance_scale=1.0)
    trainer = make_trainer(masked_text_config("chroma"), masked_text_samples("chroma"))
    text_length = kwargs["encoder_hidden_states"].shape[1]
    assert not kwargs["attention_mask"][0, :text_length].all()  # padding is masked out in the stock call
    conditioning = Conditioning(kwargs["encoder_hidden_states"],
                                attention_mask=kwargs["attention_mask"][:, :text_length])
    noisy = ChromaPipeline._unpack_latents(kwargs["hidden_states"], 64, 64, pipe.vae_scale_factor)
    with torch.no_grad():  # a fresh LoRA (B = 0) predicts like the base
        ours = trainer.model(noisy, kwargs["timestep"] * 1000, conditioning)
    assert torch.allclose(ours, ChromaPipeline._unpack_latents(stock, 64, 64, pipe.vae_scale_factor), atol=1e-5)


def test_guidance_keys_and_ddpm_features_are_refused_by_key(masked_text_config, masked_text_samples, make_trainer):
    with pytest.raises(ValueError, match="flux_guidance_value.*chroma model.*no guidance embedding"):
        make_trainer(masked_text_config("chroma", flux_guidance_value=3.5), masked_text_samples("chroma"))
    with pytest.raises(ValueError, match="snr_gamma.*chroma"):
        make_trainer(masked_text_config("chroma", snr_gamma=5.0), masked_text_samples("chroma"))


def test_default_sigmas_take_chromas_reshaping_other_schedules_do_not(masked_text_config):
    from diffusers import FlowMatchEulerDiscreteScheduler

    from dreamcore.models import family_named
    from dreamcore.models.families.chroma import chroma_sigmas
    from dreamcore.models.families.objectives import flow_sigmas

    objective = family_named("chroma").objective
    scheduler = FlowMatchEulerDiscreteScheduler()
    latents = torch.zeros(64, 16, 4, 4)
    for overrides, warped in (({}, True), ({"flow_use_uniform_schedule": True}, False),
                              ({"flow_use_beta_schedule": True}, False)):
        config = masked_text_config("chroma", **overrides)
        drawn = objective.draw(config, scheduler, latents, torch.Generator().manual_seed(1), (0, 1000), "")
        generator = torch.Generator().manual_seed(1)
        torch.randn(latents.shape, generator=generator)  # the noise is drawn first
        sigmas = flow_sigmas(config, 64, (4, 4), generator, scheduler.config)
        expected = chroma_sigmas(sigmas) if warped else sigmas
        assert torch.allclose(drawn.timesteps, expected * 1000), overrides
    assert torch.allclose(chroma_sigmas(torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0])),
                          torch.tensor([0.0, 0.0625, 0.75, 0.9375, 1.0]))
