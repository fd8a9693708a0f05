"""The common-word filter: the shipped list, a user's list, and why a candidate is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from dreamcore.tokens.wordlist import common_words_from, load_common_words


def test_shipped_list_is_a_few_thousand_lowercase_words() -> None:
    shipped = load_common_words()
    assert 2500 <= len(shipped.words) <= 10_000
    assert {"dog", "photo", "person", "woman", "the", "walk"} <= shipped.words
    assert all(word.isalpha() and word.islower() for word in shipped.words)
    assert shipped.source.endswith("common_words.txt") and shipped.digest == load_common_words().digest


@pytest.mark.parametrize(
    ("candidate", "reason"),
    [
        ("dog", "common word"),
        ("Photo", "common word"),
        ("dogs", "inflection of a common word ('s')"),
        ("walked", "inflection of a common word ('ed')"),
        ("running", "inflection of a common word ('ing')"),
        ("baked", "inflection of a common word ('ed')"),
        ("happily", "inflection of a common word ('ly')"),
        ("phot", "piece of a common word"),
        ("ould", "piece of a common word"),
        ("zwx", None),
        ("ohwx", None),
        ("sksq", None),
    ],
)
def test_rejection_names_the_rule(candidate: str, reason: str | None) -> None:
    assert load_common_words().rejection(candidate) == reason


def test_a_users_wordlist_replaces_the_shipped_one(tmp_path: Path) -> None:
    path = tmp_path / "mine.txt"
    path.write_text("# my words\nZorblax\n\nquib  # trailing comment\n")
    mine = load_common_words(path)
    assert mine.words == {"zorblax", "quib"} and mine.source == str(path)
    assert mine.rejection("zorblaxes") == "inflection of a common word ('es')"
    assert mine.rejection("orbl") == "piece of a common word"
    assert mine.rejection("dog") is None
    assert mine.digest == common_words_from(["quib", "zorblax"]).digest != load_common_words().digest


def test_missing_wordlist_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope.txt not found: give a text file"):
        load_common_words(tmp_path / "nope.txt")
