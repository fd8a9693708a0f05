"""Subject-fidelity metrics against direct computations on fixed tensors, and the embedders on tiny models."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest
import torch
from PIL import Image

from dreamcore.evaluate.clip_score import ClipScorer
from dreamcore.evaluate.protocol import SubjectProtocol
from dreamcore.evaluate.subject_fidelity import (
    ClipImageEmbedder,
    DinoEmbedder,
    PromptScores,
    RealImage,
    SubjectScorer,
    SubjectScores,
    cached_embeddings,
    cosine_matrix,
    pair_similarity,
    pairwise_distances,
    rank_weights,
)
from dreamcore.storage import ArtifactStore

A = torch.tensor([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [3.0, 4.0, 0.0]])
B = torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 5.0]])


def _noise(seed: int, size: int = 64) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8))


def _stripes(size: int = 64) -> Image.Image:
    pixels = np.zeros((size, size, 3), dtype=np.uint8)
    pixels[:, ::4] = (255, 40, 0)
    return Image.fromarray(pixels)


def test_cosine_matrix_is_torchs_cosine_of_every_pair() -> None:
    expected = torch.tensor([[torch.nn.functional.cosine_similarity(a, b, dim=0) for b in B] for a in A])
    assert torch.allclose(cosine_matrix(A, B), expected)
    assert cosine_matrix(A, B)[2].tolist() == pytest.approx([0.6, 0.0])


def test_pair_similarity_averages_over_the_real_images() -> None:
    assert pair_similarity(A, B) == pytest.approx([0.5, 0.0, 0.3])
    assert pair_similarity(B[:1], B[:1]) == pytest.approx([1.0])  # identical -> 1


def test_pairwise_distances_are_one_minus_cosine_of_each_pair_once() -> None:
    assert pairwise_distances(A) == pytest.approx([1.0, 0.4, 0.2])  # (0,1), (0,2), (1,2)
    assert pairwise_distances(A[:1].repeat(3, 1)) == pytest.approx([0.0, 0.0, 0.0])  # identical images: no diversity
    assert pairwise_distances(A[:1]) == []


def test_summary_is_mean_and_std_over_prompts_and_pres_over_class_images() -> None:
    scores = SubjectScores([PromptScores("a", 0.8, 0.9, 30.0, 0.2), PromptScores("b", 0.4, 0.7, 20.0, None)],
                           [0.5, 0.7, 0.9])
    summary = scores.summary()
    assert summary["dino"] == pytest.approx(0.6) and summary["dino_std"] == pytest.approx(0.2)
    assert summary["clip_t"] == pytest.approx(25.0) and summary["clip_i_std"] == pytest.approx(0.1)
    assert summary["div"] == pytest.approx(0.2) and summary["div_std"] == 0.0  # a prompt with one image has none
    assert summary["pres"] == pytest.approx(0.7) and summary["pres_std"] == pytest.approx(statistics.pstdev([.5, .7, .9]))
    assert scores.ranked_prompts("dino") == [0, 1]
    assert SubjectScores.from_dict(scores.as_dict()) == scores


def test_rank_weights_follows_each_metrics_direction() -> None:
    rows = [{"weights": "base", "eval_loss": 0.3, "dino": 0.2, "pres": 0.9},
            {"weights": "step-2", "eval_loss": 0.1, "dino": 0.6, "pres": 0.5},
            {"weights": "final", "eval_loss": 0.2, "dino": None, "pres": 0.4}]
    assert rank_weights(rows, "dino") == ["step-2", "base", "final"]  # higher is better; missing last
    assert rank_weights(rows, "pres") == ["final", "step-2", "base"]  # lower is better
    assert rank_weights(rows, "eval_loss") == ["step-2", "final", "base"]
    with pytest.raises(ValueError, match="metric 'lpips'"):
        rank_weights(rows, "lpips")


@pytest.fixture(scope="module")
def embedders(tiny_models):
    clip = ClipScorer.load(str(tiny_models["clip"]))
    return DinoEmbedder.load(str(tiny_models["dino"])), ClipImageEmbedder(clip, "clip-fingerprint")


@pytest.mark.parametrize("which", [0, 1], ids=["dino", "clip"])
def test_identical_images_score_one_and_different_ones_lower(embedders, which) -> None:
    embedder = embedders[which]
    noise, stripes = _noise(1), _stripes()
    embeddings = embedder.embed([noise, noise.copy(), stripes])
    same, different = pair_similarity(embeddings[:1], embeddings[1:2])[0], pair_similarity(embeddings[:1],
                                                                                           embeddings[2:])[0]
    assert same == pytest.approx(1.0, abs=1e-5)
    assert different < same - 1e-3


def test_dino_embedding_is_the_vits_final_cls_token(embedders, tiny_models) -> None:
    from transformers import AutoImageProcessor, ViTModel

    model = ViTModel.from_pretrained(str(tiny_models["dino"]), add_pooling_layer=False).eval()
    pixels = AutoImageProcessor.from_pretrained(str(tiny_models["dino"]))(images=[_noise(3)], return_tensors="pt")
    with torch.no_grad():
        expected = model(**pixels).last_hidden_state[:, 0]
    assert torch.allclose(embedders[0].embed([_noise(3)]), expected, atol=1e-6)


def test_clip_image_embedding_is_clips_own_image_embeds(embedders) -> None:
    scorer = embedders[1].scorer
    inputs = scorer.processor(text=["a toy"], images=[_noise(4)], return_tensors="pt", padding=True)
    with torch.no_grad():
        expected = scorer.model(**inputs).image_embeds  # CLIPModel's forward returns them normalised
    assert torch.allclose(torch.nn.functional.normalize(embedders[1].embed([_noise(4)])), expected, atol=1e-6)


def test_scorer_on_copies_of_the_real_images_gives_dino_one_and_no_diversity(embedders) -> None:
    dino, clip = embedders
    real = [_noise(7)]
    protocol = SubjectProtocol(("a sks toy", "a red sks toy"), "a toy", (0, 1))
    scorer = SubjectScorer(protocol, dino, clip, dino.embed(real), clip.embed(real))
    scores = scorer.score([[real[0], real[0].copy()], [_stripes(), _noise(8)]], [_stripes(), real[0]])
    first, second = scores.prompts
    assert first.dino == pytest.approx(1.0, abs=1e-5) and first.clip_i == pytest.approx(1.0, abs=1e-5)
    assert first.div == pytest.approx(0.0, abs=1e-5) and second.div > 1e-3
    assert second.dino < first.dino and second.clip_i < first.clip_i
    assert first.clip_t == pytest.approx(clip.scorer.score([real[0]], ["a sks toy"])[0], abs=1e-4)
    assert scores.pres[1] == pytest.approx(1.0, abs=1e-5) and scores.pres[0] < scores.pres[1]
    assert math.isclose(scores.summary()["pres"], statistics.fmean(scores.pres))


def test_real_embeddings_are_computed_once_per_content_digest(embedders, tmp_path) -> None:
    dino = embedders[0]
    paths = []
    for index in range(2):
        paths.append(tmp_path / f"real{index}.png")
        _noise(20 + index).save(paths[-1])
    images = [RealImage("d0", str(paths[0])), RealImage("d1", str(paths[1])), RealImage("d0", str(paths[0]))]
    store = ArtifactStore(str(tmp_path / "artifacts"))
    first, computed = cached_embeddings(store, images, dino.embed, "fp")
    assert computed == 2 and first.shape[0] == 3 and torch.equal(first[0], first[2])
    assert torch.allclose(first[0], dino.embed([Image.open(paths[0]).convert("RGB")])[0], atol=1e-6)
    again, computed = cached_embeddings(store, images, lambda pictures: pytest.fail("embedded again"), "fp")
    assert computed == 0 and torch.allclose(again, first)


def test_batched_drawing_gives_the_images_drawn_one_at_a_time(sd_pipe) -> None:
    from dreamcore.evaluate.validation import ValidationPlan, generate_batched

    plan = ValidationPlan((), (), "blurry", 2, 5.0, (64, 64))
    jobs = [("a sks toy", 3), ("a red sks toy", 4), ("a toy", 3)]
    batched = generate_batched(sd_pipe, plan, jobs, batch_size=3)
    alone = generate_batched(sd_pipe, plan, jobs, batch_size=1)
    assert len(batched) == 3 and all(image.size == (64, 64) for image in batched)
    for one, other in zip(batched, alone, strict=True):
        assert np.abs(np.asarray(one, dtype=int) - np.asarray(other, dtype=int)).max() <= 2
    assert np.asarray(batched[0]).tolist() != np.asarray(batched[2]).tolist()  # same seed, other prompt
