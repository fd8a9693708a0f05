"""The find-tokens task: a cache hit for the same model and options, and its artifacts."""

from __future__ import annotations

from pathlib import Path

import pytest
from prefect import flow

from dreamcore.storage import ArtifactStore
from dreamcore.tokens import TokenSearchOptions, plan_tokens, read_token_table
from tasks.results import result_storage_for
from tasks.tokens import find_tokens

pytestmark = pytest.mark.usefixtures("prefect_harness")

# The tiny model's byte-level vocabulary has only single letters as word-final letter tokens.
LETTERS = TokenSearchOptions(class_word="dog", min_length=1, max_length=1, top=5)


def run_find_tokens_once(model: Path, root: str, options: TokenSearchOptions, wordlist: Path):
    @flow
    def one_search():
        task = find_tokens.with_options(result_storage=result_storage_for(root))
        return task(plan_tokens(str(model), options, str(wordlist)), root, return_state=True)

    return one_search(return_state=True).result(raise_on_failure=False)


def test_same_model_and_options_are_a_cache_hit_with_artifacts(tiny_models, tmp_path: Path) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    root = str(tmp_path / "artifacts")
    wordlist = tmp_path / "words.txt"
    wordlist.write_text("a\ni\nx\n")
    first = run_find_tokens_once(tiny_models["sd"], root, LETTERS, wordlist)
    assert first.name == "Completed"
    result = first.result()
    table = read_token_table(ArtifactStore(root), result)
    assert result.counts["scanned"] == 23  # 26 letters less the wordlist's three
    assert result.details["instance_prompt"] == f"{table['rows'][0]['token']} dog"
    assert not {row["token"] for row in table["rows"]} & {"a", "i", "x"}

    second = run_find_tokens_once(tiny_models["sd"], root, LETTERS, wordlist)
    assert second.name == "Cached" and second.result() == result
    third = run_find_tokens_once(tiny_models["sd"], root, LETTERS.model_copy(update={"class_word": "cat"}), wordlist)
    assert third.name == "Completed" and third.result().key != result.key

    with get_client(sync_client=True) as client:
        keys = ArtifactFilter(key=ArtifactFilterKey(any_=["rare-tokens", "rare-token-prompt"]))
        artifacts = {a.key: a for a in client.read_artifacts(artifact_filter=keys)}
    assert set(artifacts) == {"rare-tokens", "rare-token-prompt"}
    assert '"instance_prompt"' in artifacts["rare-token-prompt"].data


def test_a_model_folder_that_does_not_exist_fails_without_retrying(tmp_path: Path, caplog) -> None:
    wordlist = tmp_path / "words.txt"
    wordlist.write_text("a\n")
    # Planning reads the model (its key holds the text encoders' fingerprint): the run fails there, naming
    # the folder, before any task could retry.
    error = run_find_tokens_once(tmp_path / "no-model", str(tmp_path / "artifacts"), LETTERS, wordlist)
    assert isinstance(error, FileNotFoundError) and "no-model" in str(error)
    assert not [r for r in caplog.records if "Retry" in r.getMessage()]
