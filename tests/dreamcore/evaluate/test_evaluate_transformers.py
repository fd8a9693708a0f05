"""Validation drawing with SD3 and Flux: stock pipelines, fixed seeds, the configured T5 length, previews through
the 16-channel Tiny AutoEncoder (Flux's packed latents unpacked first), a live transformer swapped in."""

from __future__ import annotations

import numpy as np
import pytest

from dreamcore.drawing.pipelines import denoiser_name, load_validation_pipeline
from dreamcore.evaluate.previews import PreviewDecoder
from dreamcore.evaluate.validation import ValidationPlan, generate_images, live_unet
from dreamcore.models import family_named

T5_TOKENS = 24


@pytest.fixture(scope="module", params=["sd3", "flux"])
def drawing(request, tiny_models):
    pipe = load_validation_pipeline(str(tiny_models[request.param]), "cpu")
    decoder = PreviewDecoder.load(str(tiny_models["taesd16"]), family_named(request.param), "cpu")
    return request.param, pipe, decoder


def plan(size=(64, 64), seeds=(3,)) -> ValidationPlan:
    return ValidationPlan(("sks toy",), tuple(seeds), None, 2, 3.0, size, max_sequence_length=T5_TOKENS)


def test_validation_draws_with_fixed_seeds_and_the_configured_t5_length(drawing, monkeypatch) -> None:
    _kind, pipe, _decoder = drawing
    lengths: list[int] = []
    real = pipe.encode_prompt
    monkeypatch.setattr(pipe, "encode_prompt", lambda *a, **k: lengths.append(k["max_sequence_length"]) or real(*a, **k))
    first = generate_images(pipe, plan(seeds=(3, 4)))
    again = generate_images(pipe, plan(seeds=(3,)))
    assert [(image.seed, image.image.size) for image in first] == [(3, (64, 64)), (4, (64, 64))]
    assert np.array_equal(np.asarray(first[0].image), np.asarray(again[0].image))
    assert not np.array_equal(np.asarray(first[0].image), np.asarray(first[1].image))
    assert set(lengths) == {T5_TOKENS}


def recorded_previews(decoder, seen: list[tuple]):
    """A preview factory for generate_images whose step callback decodes the latents and records
    (latent shape, preview image size) in `seen`."""
    def preview(label: str):
        def on_step_end(pipe, step_index, timestep, callback_kwargs):
            latents = callback_kwargs["latents"]
            seen.append((tuple(latents.shape), decoder.decode(latents[:1])[0].size))
            return callback_kwargs

        return on_step_end

    return preview


def test_previews_decode_16_channel_latents_of_the_image_size(drawing) -> None:
    _kind, pipe, decoder = drawing
    seen: list[tuple] = []
    images = generate_images(pipe, plan(size=(64, 48)), recorded_previews(decoder, seen))  # not square: Flux unpacks by width and height
    assert images[0].image.size == (64, 48)
    assert seen == [((1, 16, 24, 32), (64, 48))] * 2  # the tiny VAE and TAESD scale each edge by 2


def test_a_live_transformer_draws_and_the_pipeline_gets_its_own_back(drawing) -> None:
    import copy

    import torch

    _kind, pipe, _decoder = drawing
    assert denoiser_name(pipe) == "transformer"
    base = pipe.transformer
    live = copy.deepcopy(base).train()
    with torch.no_grad():
        for parameter in live.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    with live_unet(pipe, live) as ready:
        assert ready.transformer is live and not live.training
        changed = generate_images(ready, plan())[0].image
    assert pipe.transformer is base and live.training
    assert not np.array_equal(np.asarray(changed), np.asarray(generate_images(pipe, plan())[0].image))
