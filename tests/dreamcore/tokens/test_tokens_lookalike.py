"""Look-alike ranking: the name the text encoder reads as the class comes first; CLIP image similarity."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from dreamcore.tokens import TextEncoder, clip_image_similarities, load_clip, rank_lookalikes

NAMES = ["Tom Hanks", "cat", "walked", "photo", "Keanu Reeves"]


def _encoders(tokenizers, make_text_encoder, near_class: str | None) -> list[TextEncoder]:
    """SDXL-like pair of encoders; `near_class`'s token embedding is set next to "dog"'s in both."""
    encoders = []
    for i, tokenizer in enumerate(tokenizers):
        model = make_text_encoder(tokenizer, seed=10 + i, with_projection=i == 1)
        if near_class is not None:
            (name_id,) = tokenizer(near_class, add_special_tokens=False)["input_ids"]
            (dog_id,) = tokenizer("dog", add_special_tokens=False)["input_ids"]
            table = model.get_input_embeddings().weight
            with torch.no_grad():
                table[name_id] = table[dog_id] + 1e-3 * torch.randn(
                    table.shape[1], generator=torch.Generator().manual_seed(0)
                )
        encoders.append(
            TextEncoder(f"text_encoder{'_2' if i else ''}", tokenizer, model, -1, f"tokenizer{'_2' if i else ''}")
        )
    return encoders


@pytest.fixture(scope="module")
def stand_in(token_words) -> str:
    return token_words["rare"][130]


def test_a_name_built_to_read_as_the_class_ranks_first(tokenizers, make_text_encoder, token_words, stand_in) -> None:
    names = NAMES + token_words["rare"][101:121] + [stand_in]
    ranked = rank_lookalikes(_encoders(tokenizers, make_text_encoder, stand_in), "dog", names)
    assert ranked[0].name == stand_in
    assert ranked[0].class_similarity > 0.999 and ranked[1].class_similarity < ranked[0].class_similarity - 1e-3
    assert [c.score for c in ranked] == sorted((c.score for c in ranked), reverse=True)
    assert {c.name for c in ranked} == set(names) and ranked[0].image_similarity is None
    hanks = next(c for c in ranked if c.name == "Tom Hanks")
    assert hanks.tokens["tokenizer"] > 2 and set(hanks.tokens) == {"tokenizer", "tokenizer_2"}


def test_without_the_constructed_embedding_the_name_is_not_first(
    tokenizers, make_text_encoder, token_words, stand_in
) -> None:
    names = NAMES + token_words["rare"][101:121] + [stand_in]
    ranked = rank_lookalikes(_encoders(tokenizers, make_text_encoder, None), "dog", names)
    assert ranked[0].name != stand_in and ranked[0].class_similarity < 0.999


def test_image_similarity_is_weighted_into_the_score(tokenizers, make_text_encoder) -> None:
    encoders = _encoders(tokenizers, make_text_encoder, None)
    text_only = {c.name: c for c in rank_lookalikes(encoders, "dog", NAMES)}
    images = [0.1, 0.9, 0.3, 0.2, 0.5]
    ranked = rank_lookalikes(encoders, "dog", NAMES, images, image_weight=0.25)
    for candidate in ranked:
        image = images[NAMES.index(candidate.name)]
        assert candidate.image_similarity == pytest.approx(image)
        assert candidate.score == pytest.approx(
            0.75 * text_only[candidate.name].class_similarity + 0.25 * image, abs=2e-6
        )
    only_images = rank_lookalikes(encoders, "dog", NAMES, images, image_weight=1.0)
    assert [c.name for c in only_images] == ["cat", "Keanu Reeves", "walked", "photo", "Tom Hanks"]


def test_clip_similarity_to_subject_images_matches_clips_own_logits(tiny_models, tmp_path: Path) -> None:
    paths = []
    for i, colour in enumerate([(200, 30, 30), (30, 200, 30), (30, 30, 200)]):
        paths.append(tmp_path / f"subject-{i}.png")
        Image.new("RGB", (40, 48), colour).save(paths[-1])
    clip = load_clip(tiny_models["clip"], device="cpu")
    similarities = clip_image_similarities(clip, paths, NAMES)
    assert similarities == clip_image_similarities(clip, paths, NAMES)

    model, processor = clip
    inputs = processor(
        text=[f"a photo of {n}" for n in NAMES],
        images=[Image.open(p) for p in paths],
        return_tensors="pt",
        padding=True,
    )
    with torch.inference_mode():
        output = model(**inputs)
    # logits_per_text / scale = cos(text, image_i); the mean over images over |mean image embedding|.
    mean_image = torch.nn.functional.normalize(output.image_embeds, dim=-1).mean(dim=0)
    expected = output.logits_per_text.mean(dim=1) / model.logit_scale.exp() / mean_image.norm()
    assert similarities == pytest.approx(expected.tolist(), abs=1e-5)


def test_bad_lookalike_input_is_refused(tokenizers, make_text_encoder) -> None:
    encoders = _encoders(tokenizers, make_text_encoder, None)
    with pytest.raises(ValueError, match="no candidate names"):
        rank_lookalikes(encoders, "dog", ["  "])
    with pytest.raises(ValueError, match="needs the class word"):
        rank_lookalikes(encoders, " ", NAMES)
    with pytest.raises(ValueError, match="2 image similarities for 5 names"):
        rank_lookalikes(encoders, "dog", NAMES, [0.1, 0.2])
    with pytest.raises(FileNotFoundError, match="not a CLIP model folder"):
        load_clip("/nonexistent-clip")
