"""The denoiser call through the family: a training prediction equals the stock SD3 / Flux pipeline's own
transformer call on the same inputs (packing, ids, timestep scale and guidance included)."""

from __future__ import annotations

import pytest
import torch

from dreamcore.models.families.denoisers import Conditioning


def _stock_first_call(pipe, **options):
    """The kwargs and output of the pipeline's first transformer call while it generates."""
    seen = {}

    def hook(module, args, kwargs, output):
        if not seen:
            seen["kwargs"] = {k: v.clone() if torch.is_tensor(v) else v for k, v in kwargs.items()}
            seen["output"] = output[0].clone()

    handle = pipe.transformer.register_forward_hook(hook, with_kwargs=True)
    try:
        pipe("a photo of sks dog", num_inference_steps=2, height=64, width=64, max_sequence_length=32,
             generator=torch.Generator().manual_seed(0), output_type="latent", **options)
    finally:
        handle.remove()
    return seen["kwargs"], seen["output"]


def test_sd3_prediction_equals_the_stock_pipeline_call(tiny_models, make_dit_config, make_trainer, dit_samples):
    from dreamcore.models import load_pipeline

    pipe = load_pipeline(tiny_models["sd3"])
    kwargs, stock = _stock_first_call(pipe, guidance_scale=1.0)
    trainer = make_trainer(make_dit_config("sd3"), dit_samples["sd3"])
    conditioning = Conditioning(kwargs["encoder_hidden_states"], kwargs["pooled_projections"])
    with torch.no_grad():  # a fresh LoRA (B = 0) predicts like the base
        ours = trainer.model(kwargs["hidden_states"], kwargs["timestep"], conditioning)
    assert torch.allclose(ours, stock, atol=1e-5)


def test_flux_prediction_equals_the_stock_pipeline_call(tiny_models, make_dit_config, make_trainer, dit_samples):
    from diffusers import FluxPipeline

    from dreamcore.models import load_pipeline

    pipe = load_pipeline(tiny_models["flux"])
    kwargs, stock = _stock_first_call(pipe, guidance_scale=3.5)
    trainer = make_trainer(make_dit_config("flux"), dit_samples["flux"])
    # our side works in unpacked latent space [B, 16, 32, 32]; the pipeline hands sigma (timestep / 1000)
    noisy = FluxPipeline._unpack_latents(kwargs["hidden_states"], 64, 64, pipe.vae_scale_factor)
    conditioning = Conditioning(kwargs["encoder_hidden_states"], kwargs["pooled_projections"],
                                guidance=kwargs["guidance"])
    assert float(kwargs["guidance"][0]) == 3.5
    with torch.no_grad():
        ours = trainer.model(noisy, kwargs["timestep"] * 1000, conditioning)
    expected = FluxPipeline._unpack_latents(stock, 64, 64, pipe.vae_scale_factor)
    assert ours.shape == (1, 16, 32, 32)
    assert torch.allclose(ours, expected, atol=1e-5)


def test_flux_guidance_modes(make_dit_config):
    from dreamcore.models import family_named

    guidance = family_named("flux").guidance
    assert torch.equal(guidance(make_dit_config("flux", flux_guidance_value=3.5), 2, torch.Generator()),
                       torch.full((2,), 3.5))
    ranged = make_dit_config("flux", flux_guidance_mode="random-range", flux_guidance_min=1.0, flux_guidance_max=4.0)
    drawn = guidance(ranged, 1000, torch.Generator().manual_seed(0))
    assert 1.0 <= float(drawn.min()) < 1.1 and 3.9 < float(drawn.max()) <= 4.0
    assert torch.equal(guidance(ranged, 3, None), torch.full((3,), 2.5))  # the eval loss's fixed value


def test_flux_refuses_odd_latent_sizes(tiny_models):
    from dreamcore.models import family_named, load_pipeline

    transformer = load_pipeline(tiny_models["flux"]).transformer
    with pytest.raises(ValueError, match="2x2 patches"):
        family_named("flux").predict(transformer, torch.zeros(1, 16, 5, 4), torch.ones(1),
                                     Conditioning(torch.zeros(1, 4, 32), torch.zeros(1, 32), guidance=torch.ones(1)))
