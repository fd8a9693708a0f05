"""The tokens stage: committed once per model + options + wordlist, reused after that."""

from __future__ import annotations

import json
from pathlib import Path

from dreamcore.storage import ArtifactStore
from dreamcore.tokens import TokenSearchOptions, find_tokens_stage, load_common_words, read_token_table, tokens_key

OPTIONS = TokenSearchOptions(class_word="dog", top=5)


def test_search_is_committed_once_and_reused(
    storage_root: str, sdxl_text_folder: Path, tmp_path: Path, token_words
) -> None:
    wordlist = tmp_path / "words.txt"
    wordlist.write_text("\n".join(token_words["common"]))
    store = ArtifactStore(storage_root)
    calls = []
    first, scanned = find_tokens_stage(
        store, sdxl_text_folder, OPTIONS, wordlist, "cpu", lambda d, t: calls.append((d, t))
    )
    assert scanned and calls[-1][0] == calls[-1][1] == 2 * first.counts["scanned"]  # two encoders
    again, scanned_again = find_tokens_stage(store, sdxl_text_folder, OPTIONS, wordlist, "cpu")
    assert not scanned_again and again == first

    table = read_token_table(store, first)
    assert [row["rank"] for row in table["rows"]] == [1, 2, 3, 4, 5]
    best = table["rows"][0]
    assert first.details["token"] == best["token"] and first.details["instance_prompt"] == f"{best['token']} dog"
    assert len(best["ids_tokenizer"]) == len(best["ids_tokenizer_2"]) == 1
    assert best["token"] not in token_words["common"]
    report = store.read_bytes(first.details["report"]).decode()
    snippet = report.split("```json\n")[1].split("```")[0]
    assert json.loads(snippet) == {"caption_strategy": "instanceprompt", "instance_prompt": f"{best['token']} dog"}
    assert "prior shift" in report and first.report_uri.endswith("tokens.md")


def test_key_follows_options_wordlist_and_text_encoders(sdxl_text_folder: Path, tiny_models, tmp_path: Path) -> None:
    shipped = load_common_words()
    key = tokens_key(sdxl_text_folder, OPTIONS, shipped)
    assert key == tokens_key(sdxl_text_folder, TokenSearchOptions(class_word="dog", top=5), shipped)
    assert key != tokens_key(sdxl_text_folder, OPTIONS.model_copy(update={"class_word": "cat"}), shipped)
    other_words = tmp_path / "w.txt"
    other_words.write_text("dog\n")
    assert key != tokens_key(sdxl_text_folder, OPTIONS, load_common_words(other_words))
    assert key != tokens_key(tiny_models["sdxl"], OPTIONS, shipped)
