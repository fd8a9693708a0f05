"""Validation drawing with Kolors: the stock KolorsPipeline at fixed seeds and ChatGLM3's 256 tokens (what the
text cache stores), and previews of its SDXL-VAE latents through the 4-channel Tiny AutoEncoder."""

from __future__ import annotations

import numpy as np
import pytest

from dreamcore.drawing.pipelines import load_validation_pipeline
from dreamcore.evaluate.previews import PreviewDecoder
from dreamcore.evaluate.validation import ValidationPlan, generate_images
from dreamcore.models import family_named
from tests.dreamcore.evaluate.test_evaluate_transformers import recorded_previews

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def kolors(tiny_models):
    return load_validation_pipeline(str(tiny_models["kolors"]), "cpu")


def plan(size=(64, 64), seeds=(3,)) -> ValidationPlan:
    return ValidationPlan(("sks toy",), tuple(seeds), None, 2, 5.0, size)


def test_validation_draws_with_fixed_seeds_at_the_cached_chatglm_length(kolors, monkeypatch) -> None:
    lengths: list[int] = []
    real = kolors.encode_prompt
    monkeypatch.setattr(kolors, "encode_prompt",
                        lambda *a, **k: lengths.append(k.get("max_sequence_length", 256)) or real(*a, **k))
    first = generate_images(kolors, plan(seeds=(3, 4)))
    again = generate_images(kolors, plan(seeds=(3,)))
    assert type(kolors).__name__ == "KolorsPipeline"
    assert [(image.seed, image.image.size) for image in first] == [(3, (64, 64)), (4, (64, 64))]
    assert np.array_equal(np.asarray(first[0].image), np.asarray(again[0].image))
    assert not np.array_equal(np.asarray(first[0].image), np.asarray(first[1].image))
    assert set(lengths) == {256}  # encode_prompt's own length, as the text cache encodes


def test_previews_decode_sdxl_vae_latents_through_taesd(kolors, tiny_models) -> None:
    decoder = PreviewDecoder.load(str(tiny_models["taesd"]), family_named("kolors"), "cpu")
    seen: list[tuple] = []
    images = generate_images(kolors, plan(size=(64, 48)), recorded_previews(decoder, seen))
    assert images[0].image.size == (64, 48)
    assert seen == [((1, 4, 24, 32), (64, 48))] * 2
