"""The rare-token finder on a realistic BPE vocabulary with two tokenizers (SDXL-like)."""

from __future__ import annotations

import pytest
import torch

from dreamcore.tokens import TokenSearchOptions, find_rare_tokens, load_text_encoders
from dreamcore.tokens.encoders import PrefixCachedPrompts, TextEncoder

OPTIONS = TokenSearchOptions(class_word="dog", top=40, min_length=3, max_length=8)


@pytest.fixture(scope="module")
def encoders(sdxl_text_folder):
    return load_text_encoders(sdxl_text_folder, device="cpu")


@pytest.fixture(scope="module")
def search(encoders, common_words):
    return find_rare_tokens(encoders, common_words, OPTIONS)


def test_every_suggestion_is_one_token_in_each_tokenizer(search, encoders, token_words) -> None:
    assert [e.tokenizer_name for e in encoders] == ["tokenizer", "tokenizer_2"]
    assert len(search.suggestions) == 40
    for suggestion in search.suggestions:
        for encoder in encoders:
            ids = encoder.tokenizer(suggestion.token, add_special_tokens=False)["input_ids"]
            assert ids == suggestion.ids[encoder.tokenizer_name]
            assert len(ids) == 1, (suggestion.token, encoder.tokenizer_name, ids)
    # Rare strings the second tokenizer lacks take several tokens there: they were never scanned.
    missing_in_second = set(token_words["rare"][:60])
    assert search.rejected["more than 1 token(s)"] >= len(missing_in_second) - 5  # a few are common-word pieces
    assert not missing_in_second & {s.token for s in search.suggestions}


def test_no_suggestion_is_a_common_word_an_inflection_or_a_piece(search, token_words) -> None:
    common = set(token_words["common"])
    inflected = set(token_words["inflected"])
    for suggestion in search.suggestions:
        token = suggestion.token
        assert token not in common and token not in inflected and token not in token_words["pieces"]
        assert not any(token in word for word in common), f"{token!r} is a piece of a common word"
        assert token.isalpha() and 3 <= len(token) <= 8
    assert search.rejected["common word"] >= 1500
    inflections_in_bounds = {w for w in inflected if 3 <= len(w) <= 8} - common
    assert search.rejected["inflection of a common word"] >= len(inflections_in_bounds) > 200
    assert search.rejected["piece of a common word"] >= len(token_words["pieces"])
    # Words outside the test's list and the made-up strings are what is left to suggest.
    allowed = set(token_words["rare"]) | set(token_words["other"])
    assert {s.token for s in search.suggestions} <= allowed


def test_ranking_is_stable_across_runs_and_batch_sizes(search, sdxl_text_folder, common_words) -> None:
    again = find_rare_tokens(
        load_text_encoders(sdxl_text_folder, device="cpu"), common_words, OPTIONS.model_copy(update={"batch_size": 7})
    )
    assert [(s.token, s.score) for s in again.suggestions] == [(s.token, s.score) for s in search.suggestions]
    assert again.scanned == search.scanned > 1000
    scores = [s.score for s in search.suggestions]
    assert scores == sorted(scores) and scores[0] < scores[-1]


def test_score_is_the_prior_shift_of_a_plain_forward_pass(search, encoders) -> None:
    """Recompute the documented score for two suggestions with the whole prompt, without the prefix cache."""
    for suggestion in (search.suggestions[0], search.suggestions[-1]):
        shifts = []
        for encoder in encoders:
            tokenizer = encoder.tokenizer
            with_token = tokenizer(f"a photo of {suggestion.token} dog", return_tensors="pt")["input_ids"]
            without = tokenizer("a photo of dog", return_tensors="pt")["input_ids"]
            states_with = _hidden(encoder, with_token)[0, -2:]  # the class word and end of text
            states_without = _hidden(encoder, without)[0, -2:]
            shifts.append((1 - torch.cosine_similarity(states_with, states_without, dim=-1)).mean().item())
            assert suggestion.scores[encoder.name] == pytest.approx(shifts[-1], abs=2e-6)
        assert suggestion.score == pytest.approx(sum(shifts) / 2, abs=2e-6)


def test_at_most_n_tokens_lets_in_strings_split_in_one_tokenizer(encoders, common_words, token_words) -> None:
    wider = find_rare_tokens(encoders, common_words, OPTIONS.model_copy(update={"max_tokens": 3, "top": 10_000}))
    by_token = {s.token: s for s in wider.suggestions}
    second = encoders[1].tokenizer
    expected = [
        w
        for w in token_words["rare"][:60]
        if common_words.rejection(w) is None and len(second(w, add_special_tokens=False)["input_ids"]) <= 3
    ]
    assert len(expected) >= 20
    for token in expected:
        assert len(by_token[token].ids["tokenizer"]) == 1
        assert 2 <= len(by_token[token].ids["tokenizer_2"]) <= 3
    assert all(len(ids) <= 3 for s in wider.suggestions for ids in s.ids.values())


@pytest.mark.parametrize("hidden_layer", [-1, -2])
def test_prefix_cache_gives_the_encoders_own_hidden_states(encoders, hidden_layer) -> None:
    encoder = TextEncoder("text_encoder", encoders[0].tokenizer, encoders[0].model, hidden_layer)
    tokenizer = encoder.tokenizer
    full = tokenizer(["a photo of xyzzy dog", "a photo of walked dog"], return_tensors="pt", padding=True)["input_ids"]
    prefix_length = 1 + len(tokenizer("a photo of", add_special_tokens=False)["input_ids"])
    cached = PrefixCachedPrompts(encoder, full[0, :prefix_length].tolist())
    assert torch.allclose(cached.encode(full[:, prefix_length:]), _hidden(encoder, full)[:, prefix_length:], atol=1e-5)


def test_bad_options_are_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match="exactly once"):
        TokenSearchOptions(template="a photo of a dog")
    with pytest.raises(ValueError, match="spaces around"):
        TokenSearchOptions(template="a photo of{token} dog")
    with pytest.raises(ValueError, match="min_length 9 is above max_length 4"):
        TokenSearchOptions(min_length=9, max_length=4)


def test_filters_that_leave_nothing_say_so(encoders, common_words) -> None:
    with pytest.raises(ValueError, match="no candidate token survived"):
        find_rare_tokens(encoders, common_words, TokenSearchOptions(min_length=30, max_length=40))


def _hidden(encoder: TextEncoder, input_ids):
    with torch.inference_mode():
        output = encoder.model(input_ids=input_ids, output_hidden_states=True)
    return output.last_hidden_state if encoder.hidden_layer == -1 else output.hidden_states[encoder.hidden_layer]
