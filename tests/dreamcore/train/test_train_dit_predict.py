"""The denoiser call through the family: a training prediction equals the stock SD3 / Flux pipeline's own
transformer call on the same inputs (packing, ids, timestep scale and guidance included)."""

from __future__ import annotations

import pytest
import torch

from dreamcore.models.families.denoisers import Conditioning


def _stock_first_call(pipe, max_sequence_length: int = 32, **options):
    """The kwargs and output of the pipeline's first transformer call while it generates."""
    seen = {}

    def hook(module, args, kwargs, output):
        if not seen:
            seen["kwargs"] = {k: v.clone() if torch.is_tensor(v) else v for k, v in kwargs.items()}
            seen["output"] = output[0].clone()

    handle = pipe.transformer.register_forward_hook(hook, with_kwargs=True)
    try:
        pipe("a photo of sks dog", num_inference_steps=2, height=64, width=64, max_sequence_length=max_sequence_length,
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


def _padding_changed(batch):
    """The batch with random T5 states at its padding positions (where the attention mask is False)."""
    embeds = batch.prompt_embeds.clone()
    padding = ~batch.prompt_attention_mask
    embeds[padding] = torch.randn(int(padding.sum()), embeds.shape[-1], generator=torch.Generator().manual_seed(3))
    return embeds


def test_flux_attention_masked_training_ignores_the_padding_tokens(make_dit_config, make_trainer, dit_samples):
    from dataclasses import replace

    from dreamcore.train.memory import collate

    batch = collate(dit_samples["flux"][:2])
    assert batch.prompt_attention_mask is not None and batch.prompt_attention_mask.shape == (2, 32)
    # The character-level tiny T5 fills all 32 tokens with the demo captions: pad the last ones by hand.
    mask = batch.prompt_attention_mask.clone()
    mask[0, 20:], mask[1, 26:] = False, False
    batch = replace(batch, prompt_attention_mask=mask)
    changed = _padding_changed(batch)
    noisy = torch.randn(2, 16, 32, 32, generator=torch.Generator().manual_seed(1))
    timesteps, guidance = torch.tensor([300.0, 700.0]), torch.tensor([1.0, 1.0])
    outputs = {}
    for masked in (True, False):
        trainer = make_trainer(make_dit_config("flux", flux_attention_masked_training=masked), dit_samples["flux"])
        conditioning = trainer._conditioning(batch, guidance)
        assert (conditioning.attention_mask is not None) == masked
        with torch.no_grad():
            outputs[masked] = (trainer.model(noisy, timesteps, conditioning),
                               trainer.model(noisy, timesteps, conditioning.__class__(
                                   changed, conditioning.pooled, None, guidance, conditioning.attention_mask)))
    masked_original, masked_changed = outputs[True]
    assert torch.allclose(masked_original, masked_changed, atol=1e-5)  # padding embeddings do not matter
    plain_original, plain_changed = outputs[False]
    assert not torch.allclose(plain_original, plain_changed, atol=1e-3)  # without the mask they do
    # A full mask is the same as no mask.
    trainer = make_trainer(make_dit_config("flux"), dit_samples["flux"])
    full = Conditioning(batch.prompt_embeds, batch.pooled_prompt_embeds, None, guidance,
                        torch.ones_like(batch.prompt_attention_mask))
    with torch.no_grad():
        assert torch.allclose(trainer.model(noisy, timesteps, full), plain_original, atol=1e-5)


def test_flux_masked_training_trains(make_dit_config, make_trainer, dit_samples):
    import math

    trainer = make_trainer(make_dit_config("flux", flux_attention_masked_training=True, max_train_steps=2),
                           dit_samples["flux"])
    history = trainer.train().history
    assert len(history) == 2 and all(math.isfinite(e["loss"]) for e in history)


def test_flux_eval_loss_masks_padding_as_training_does(make_dit_config, make_trainer, dit_samples):
    from dataclasses import replace

    from dreamcore.evaluate.eval_loss import compute_eval_loss
    from dreamcore.train.memory import collate

    batch = collate(dit_samples["flux"][:2])
    mask = batch.prompt_attention_mask.clone()
    mask[:, 24:] = False
    batch = replace(batch, prompt_attention_mask=mask)
    changed = replace(batch, prompt_embeds=_padding_changed(batch))
    trainer = make_trainer(make_dit_config("flux"), dit_samples["flux"])
    base = trainer.base

    def loss(b, masked):
        return compute_eval_loss(base.unet, base.noise_scheduler, base.prediction_type, [b], [300, 700],
                                 family=base.family, guidance=1.0, attention_masked=masked).mean

    assert loss(batch, True) == pytest.approx(loss(changed, True), rel=1e-5)
    assert loss(batch, False) != pytest.approx(loss(changed, False), rel=1e-5)
