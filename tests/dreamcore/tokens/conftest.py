"""A realistic offline BPE vocabulary and tiny text encoders over it, for the token finder tests.

The vocabulary: ~2,900 English words (the test's common-word list plus words outside it),
inflections and word pieces, and 400 made-up rare strings, learned as BPE merges so each is one
token (8,000+ entries). The SDXL-like model's second tokenizer lacks some rare strings, so those
take several tokens there.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from dreamcore.tokens.wordlist import common_words_from, load_common_words

CONSONANTS = "bcdfghjklmnpqrstvwxz"
VOWELS = "aeiouy"
PIECES = ["tion", "ing", "ment", "ness", "phot", "ould", "ight", "ber", "ous"]
PROMPT_WORDS = ["a", "photo", "of", "dog"]


def _rare_strings(count: int, seed: int = 7) -> list[str]:
    """Pronounceable-ish made-up strings (like "zwx" or "ohwx"), 3-7 letters, seeded."""
    rng = random.Random(seed)
    made: dict[str, None] = {}
    while len(made) < count:
        letters = [
            rng.choice(CONSONANTS if i % 2 == 0 or rng.random() < 0.4 else VOWELS) for i in range(rng.randint(3, 7))
        ]
        made["".join(letters)] = None
    return list(made)


@pytest.fixture(scope="session")
def token_words() -> dict[str, list[str]]:
    """The word groups the test vocabulary is made of."""
    english = sorted(load_common_words().words)
    common = english[::3] + english[1::3]  # two thirds: the test's common-word list
    other = english[2::3]  # English words the list does not know
    inflected = (
        [w + "s" for w in common[:150]] + [w + "ed" for w in common[150:250]] + [w + "ing" for w in common[250:350]]
    )
    return {"common": common, "other": other, "inflected": inflected, "pieces": PIECES, "rare": _rare_strings(400)}


@pytest.fixture(scope="session")
def common_words(token_words):
    """The test's common-word filter."""
    return common_words_from(token_words["common"], source="test word list")


@pytest.fixture(scope="session")
def tokenizers(token_words):
    """(first, second) CLIP tokenizers; the second lacks the first 60 rare strings."""
    from dreamcore.models.tokenizer import clip_tokenizer_from_words

    groups = token_words
    words = PROMPT_WORDS + groups["common"] + groups["other"] + groups["inflected"] + groups["pieces"]
    first = clip_tokenizer_from_words(words + groups["rare"])
    second = clip_tokenizer_from_words(words + groups["rare"][60:])
    assert len(first) > 8000 and len(second) > 8000
    return first, second


@pytest.fixture(scope="session")
def make_text_encoder():
    """make(tokenizer, seed, with_projection=False) -> a tiny random CLIP text encoder for it."""

    def make(tokenizer, seed: int, with_projection: bool = False):
        import torch
        from transformers import CLIPTextModel, CLIPTextModelWithProjection

        from dreamcore.models.tiny_unets import clip_text_config

        config = clip_text_config(tokenizer)  # the tiny models' own CLIP text config
        torch.manual_seed(seed)
        model_class = CLIPTextModelWithProjection if with_projection else CLIPTextModel
        return model_class(config).eval()

    return make


@pytest.fixture(scope="session")
def sdxl_text_folder(tmp_path_factory, tokenizers, make_text_encoder) -> Path:
    """An SDXL-like folder holding only model_index.json, both tokenizers and both text encoders."""
    folder = tmp_path_factory.mktemp("token-model") / "sdxl"
    first, second = tokenizers
    first.save_pretrained(folder / "tokenizer")
    second.save_pretrained(folder / "tokenizer_2")
    make_text_encoder(first, seed=1).save_pretrained(folder / "text_encoder")
    make_text_encoder(second, seed=2, with_projection=True).save_pretrained(folder / "text_encoder_2")
    index = {
        "_class_name": "StableDiffusionXLPipeline",
        "tokenizer": ["transformers", "CLIPTokenizer"],
        "tokenizer_2": ["transformers", "CLIPTokenizer"],
        "text_encoder": ["transformers", "CLIPTextModel"],
        "text_encoder_2": ["transformers", "CLIPTextModelWithProjection"],
        "unet": [None, None],
    }
    (folder / "model_index.json").write_text(json.dumps(index))
    return folder
