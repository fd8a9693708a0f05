"""The offline byte-level CLIP tokenizer and merges learned from words."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import random
import string
import time

import pytest

from dreamcore.models import byte_level_clip_tokenizer, clip_tokenizer_from_words


def test_byte_level_tokenizer_covers_any_text_without_unknown_tokens():
    tokenizer = byte_level_clip_tokenizer()
    assert len(tokenizer) == 514
    assert (tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id) == (512, 513, 513)

    ids = tokenizer("A photo of  sks dog, 日本 ✓ naïve!").input_ids
    assert ids[0] == 512 and ids[-1] == 513
    assert all(i < 512 for i in ids[1:-1]), "every byte must map to a byte token, never to <|endoftext|>"
    assert tokenizer.decode(ids, skip_special_tokens=True).replace(" ", "") == "aphotoofsksdog,日本✓naïve!"


def test_byte_level_tokenizer_pads_and_truncates_to_77():
    tokenizer = byte_level_clip_tokenizer()
    short = tokenizer("dog", padding="max_length", max_length=77, truncation=True).input_ids
    long = tokenizer("word " * 100, padding="max_length", max_length=77, truncation=True).input_ids
    assert len(short) == len(long) == 77
    assert short[-1] == 513 and long[-1] == 513


def test_words_become_single_tokens_and_earlier_words_stay_single():
    # "ab" is learned before "cab": a naive merge order would split "cab" into "c" + "ab</w>".
    words = ["sks", "ohwx", "ab", "cab", "cabbage", "Photo"]
    tokenizer = clip_tokenizer_from_words(words)
    for word in words:
        assert tokenizer.tokenize(word) == [word.lower() + "</w>"]
    assert tokenizer.tokenize("a photo of sks") == ["a</w>", "photo</w>", "o", "f</w>", "sks</w>"]


def test_words_tokenizer_roundtrips_through_save_pretrained(tmp_path):
    from transformers import CLIPTokenizer

    tokenizer = clip_tokenizer_from_words(["sks", "ohwx"])
    tokenizer.save_pretrained(tmp_path)
    reloaded = CLIPTokenizer.from_pretrained(tmp_path)
    assert len(reloaded) == len(tokenizer)
    assert reloaded("sks ohwx dog").input_ids == tokenizer("sks ohwx dog").input_ids
    assert reloaded.model_max_length == 77


def test_thousands_of_words_build_quickly():
    rng = random.Random(0)
    words = ["".join(rng.choices(string.ascii_lowercase, k=rng.randint(2, 9))) for _ in range(3000)]
    start = time.perf_counter()
    tokenizer = clip_tokenizer_from_words(words)
    assert time.perf_counter() - start < 10
    for word in rng.sample(words, 50):
        assert len(tokenizer.tokenize(word)) == 1


@pytest.mark.parametrize("word", ["a1", "two words", "sks-dog"])
def test_words_that_are_several_clip_pre_tokens_are_rejected(word):
    with pytest.raises(ValueError, match="pre-tokens"):
        clip_tokenizer_from_words([word])
