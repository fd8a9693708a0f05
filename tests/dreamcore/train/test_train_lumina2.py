"""Lumina2's own training behaviour on its tiny model: its samples hold Gemma2 states of the system prompt and
caption with Gemma's mask, and the prediction is Lumina2Pipeline's own transformer call (t = 1 - sigma, the mask)
negated into flow matching's target. (Exports and resume: test_train_masked_text_families.py.)"""

from __future__ import annotations

import torch

from dreamcore.models import load_pipeline
from dreamcore.models.families.denoisers import Conditioning
from tests.dreamcore.train.conftest import MASKED_TEXT_TOKENS
from tests.dreamcore.train.test_train_dit_predict import _stock_first_call


def test_samples_carry_gemma_states_of_the_system_prompt_and_caption(masked_text_samples):
    sample = masked_text_samples("lumina2")[0]
    assert sample.prompt_embeds.shape[-2:] == (MASKED_TEXT_TOKENS, 32) and sample.pooled_prompt_embeds is None
    assert sample.latents.shape[-3:] == (16, 8, 8)  # Lumina2Pipeline's VAE scale factor 8
    mask = sample.prompt_attention_mask[0]
    real = int(mask.sum())
    assert 32 < real < MASKED_TEXT_TOKENS and mask[:real].all()  # the system prompt, the caption, then padding


def test_prediction_is_the_stock_pipeline_call_negated(tiny_models, masked_text_config, make_trainer,
                                                       masked_text_samples):
    pipe = load_pipeline(tiny_models["lumina2"])
    kwargs, stock = _stock_first_call(pipe, MASKED_TEXT_TOKENS, guidance_scale=1.0)
    trainer = make_trainer(masked_text_config("lumina2"), masked_text_samples("lumina2"))
    assert not kwargs["encoder_attention_mask"].all()  # padding is masked out in the stock call
    conditioning = Conditioning(kwargs["encoder_hidden_states"], attention_mask=kwargs["encoder_attention_mask"].bool())
    sigma = 1 - kwargs["timestep"]  # the pipeline hands Lumina's reversed time
    with torch.no_grad():  # a fresh LoRA (B = 0) predicts like the base
        ours = trainer.model(kwargs["hidden_states"], sigma * 1000, conditioning)
    assert ours.shape == (1, 16, 8, 8)
    assert torch.allclose(ours, -stock, atol=1e-5)
