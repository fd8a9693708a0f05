"""Sampling previews on Qwen-Image: its pipeline's packed latents reach a preview callback as one frame
[B, C, h, w]; with no Tiny AutoEncoder known for its latents and none configured, previews are off with a warning."""

from __future__ import annotations

import logging

import torch

from dreamcore.evaluate.previews import PreviewDecoder, unpacked_latents
from dreamcore.models import family_named, load_pipeline


def test_a_preview_callback_sees_one_frame_of_unpacked_latents(tiny_models):
    pipe = load_pipeline(tiny_models["qwen_image"])
    seen = []

    def callback(pipe, step_index, timestep, callback_kwargs):
        seen.append(tuple(callback_kwargs["latents"].shape))
        return callback_kwargs

    pipe("a photo of sks dog", num_inference_steps=2, height=64, width=64, output_type="latent",
         generator=torch.Generator().manual_seed(0), callback_on_step_end=unpacked_latents(callback, pipe, (64, 64)))
    assert seen == [(1, 16, 32, 32)] * 2


def test_previews_are_off_without_a_decoder_for_its_latents(caplog):
    with caplog.at_level(logging.WARNING):
        assert PreviewDecoder.load(None, family_named("qwen_image"), "cpu") is None
    assert "no Tiny AutoEncoder is known for qwen_image latents" in caplog.text
