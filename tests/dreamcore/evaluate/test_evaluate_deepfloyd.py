"""Validation drawing with DeepFloyd IF stage I: the stock IFPipeline draws with fixed seeds at its native 64 px,
and previews show its intermediate pixels through the pipeline's older `callback`, with no decoder."""

from __future__ import annotations

import numpy as np
import pytest

from dreamcore.drawing.pipelines import load_validation_pipeline, native_size
from dreamcore.evaluate.previews import PreviewDecoder
from dreamcore.evaluate.validation import ValidationPlan, generate_images
from dreamcore.models import family_named


@pytest.fixture(scope="module")
def pipe(tiny_models):
    return load_validation_pipeline(str(tiny_models["deepfloyd"]), "cpu")


def test_validation_draws_with_fixed_seeds_at_the_native_size(pipe) -> None:
    assert type(pipe).__name__ == "IFPipeline" and native_size(pipe) == (64, 64)
    plan = ValidationPlan(("sks toy",), (3, 4), None, 2, 3.0, None)
    first, again = generate_images(pipe, plan), generate_images(pipe, plan)
    assert [(image.seed, image.image.size) for image in first] == [(3, (64, 64)), (4, (64, 64))]
    assert np.array_equal(np.asarray(first[0].image), np.asarray(again[0].image))
    assert not np.array_equal(np.asarray(first[0].image), np.asarray(first[1].image))


def test_previews_show_the_intermediate_pixels_without_a_decoder(pipe, tiny_models) -> None:
    decoder = PreviewDecoder.load(str(tiny_models["taesd"]), family_named("deepfloyd"), "cpu")
    assert decoder is not None and decoder.vae is None  # pixel space: nothing to decode with
    seen: list[tuple] = []

    def preview(label: str):
        def on_step_end(pipe, step_index, timestep, callback_kwargs):
            pixels = callback_kwargs["latents"]
            seen.append((step_index, tuple(pixels.shape), decoder.decode(pixels[:1])[0].size))
            return callback_kwargs

        return on_step_end

    generate_images(pipe, ValidationPlan(("sks toy",), (3,), None, 2, 3.0, (64, 64)), preview)
    assert seen == [(0, (1, 3, 64, 64), (64, 64)), (1, (1, 3, 64, 64), (64, 64))]
