"""CLIP score: 100 x cosine of CLIP's own embeddings, clamped at 0; summaries."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from dreamcore.evaluate.clip_score import ClipScorer, summarise


def picture(seed: int) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 255, (48, 40, 3), dtype=np.uint8))


def direct_score(model, processor, image: Image.Image, prompt: str) -> float:
    """The score computed straight from CLIPModel's feature functions."""
    with torch.no_grad():
        pixels = processor(images=[image], return_tensors="pt")["pixel_values"]
        tokens = processor.tokenizer([prompt], return_tensors="pt", padding=True)
        image_features = model.get_image_features(pixel_values=pixels).pooler_output[0]
        text_features = model.get_text_features(**tokens).pooler_output[0]
    cosine = torch.nn.functional.cosine_similarity(image_features, text_features, dim=0)
    return max(100.0 * float(cosine), 0.0)


def test_score_of_an_image_with_its_own_prompt_equals_the_direct_computation(tiny_models) -> None:
    scorer = ClipScorer.load(str(tiny_models["clip"]))
    prompts = ["a photo of sks toy", "a red mug on a table", "sks"]
    images = [picture(i) for i in range(3)]
    scores = scorer.score(images, prompts)
    expected = [direct_score(scorer.model, scorer.processor, i, p) for i, p in zip(images, prompts)]
    assert scores == pytest.approx(expected, abs=1e-4)
    assert all(0.0 <= s <= 100.0 for s in scores)
    assert len({round(s, 4) for s in expected}) == 3  # the images really score differently


def test_negative_similarity_is_clamped_at_zero(tiny_models) -> None:
    scorer = ClipScorer.load(str(tiny_models["clip"]))
    images, prompts = [picture(i) for i in range(4)], [f"prompt {i}" for i in range(4)]
    positive = scorer.score(images, prompts)
    assert all(s > 0 for s in positive)
    with torch.no_grad():  # flipping the text projection flips every cosine's sign
        scorer.model.text_projection.weight.neg_()
    flipped = [direct_score(scorer.model, scorer.processor, i, p) for i, p in zip(images, prompts)]
    assert flipped == [0.0] * 4 and scorer.score(images, prompts) == [0.0] * 4


def test_summary_is_min_mean_max_population_std() -> None:
    assert summarise([10.0, 20.0, 30.0]) == pytest.approx({"count": 3, "min": 10.0, "mean": 20.0, "max": 30.0,
                                                           "std": (200 / 3) ** 0.5})
    assert summarise([])["mean"] is None


def test_a_folder_without_clip_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="pretrained_evaluation_model_name_or_path"):
        ClipScorer.load(str(tmp_path))
