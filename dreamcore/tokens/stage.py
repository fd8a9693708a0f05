"""The "tokens" stage: a rare-token search committed to the artifact store like any other stage.

Its key is the text encoders' fingerprint, the search options and the wordlist's content digest,
so the same model and options never scan twice, on this machine or another.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict

from dreamcore.storage import ArtifactStore, StageResult, digest_of, run_stage, stage_key
from dreamcore.tokens.encoders import load_text_encoders, text_encoders_fingerprint
from dreamcore.tokens.finder import Progress, TokenSearchOptions, find_rare_tokens
from dreamcore.tokens.report import SCORE_MEANING, summary, token_markdown, token_rows
from dreamcore.tokens.wordlist import CommonWords, load_common_words

TOKENS_STAGE = "tokens"
TOKENS_VERSION = 1
TABLE_FILE = "tokens.json"
REPORT_FILE = "tokens.md"


def tokens_key(model_path: str | Path, options: TokenSearchOptions, common_words: CommonWords) -> str:
    """Stage key of a search: options, wordlist digest and the tokenizer + text-encoder fingerprint."""
    config = {"options": options.model_dump(mode="json"), "wordlist": common_words.digest}
    return stage_key(TOKENS_STAGE, TOKENS_VERSION, config, model_fingerprint=text_encoders_fingerprint(model_path))


class TokensPlan(BaseModel):
    """One rare-token search, keyed once: the model, the options, the wordlist file (None: the shipped one)."""

    model_config = ConfigDict(frozen=True)

    model_path: str
    options: TokenSearchOptions
    wordlist: str | None = None
    key: str


def plan_tokens(model_path: str | Path, options: TokenSearchOptions | None = None,
                wordlist: str | Path | None = None) -> TokensPlan:
    """The plan of searching `model_path` with these options and wordlist (its key read from the wordlist's
    content and the text encoders' fingerprint)."""
    options = options or TokenSearchOptions()
    key = tokens_key(model_path, options, load_common_words(wordlist))
    return TokensPlan(model_path=str(model_path), options=options, wordlist=None if wordlist is None else str(wordlist),
                      key=key)


def find_tokens_stage(
    store: ArtifactStore,
    model_path: str | Path,
    options: TokenSearchOptions | None = None,
    wordlist: str | Path | None = None,
    device: str | None = None,
    on_progress: Progress | None = None,
    *,
    key: str | None = None,
) -> tuple[StageResult, bool]:
    """Run (or reuse) the rare-token search of a model; the bool says whether it scanned (`key`: the search's
    stage key when a TokensPlan holds it, else computed here)."""
    options = options or TokenSearchOptions()
    common_words = load_common_words(wordlist)
    key = key or tokens_key(model_path, options, common_words)

    def build(folder: str) -> StageResult:
        search = find_rare_tokens(load_text_encoders(model_path, device), common_words, options, on_progress)
        rows = token_rows(search)
        table = {
            "rows": rows,
            "score": SCORE_MEANING,
            "summary": summary(search),
            "scanned": search.scanned,
            "rejected": search.rejected,
            "vocabulary_size": search.vocabulary_size,
            "options": options.model_dump(mode="json"),
            "wordlist": common_words.source,
        }
        store.write_json(f"{folder}/{TABLE_FILE}", table)
        store.write_bytes(f"{folder}/{REPORT_FILE}", token_markdown(search).encode())
        return StageResult(
            stage=TOKENS_STAGE,
            key=key,
            output_uri=store.uri(folder),
            digest=digest_of(rows),
            counts={"scanned": search.scanned, "suggestions": len(rows), "vocabulary": search.vocabulary_size},
            report_uri=store.uri(f"{folder}/{REPORT_FILE}"),
            details={
                "instance_prompt": search.instance_prompt(),
                "token": search.suggestions[0].token,
                "table": f"{folder}/{TABLE_FILE}",
                "report": f"{folder}/{REPORT_FILE}",
            },
        )

    return run_stage(store, TOKENS_STAGE, key, build)


def read_token_table(store: ArtifactStore, result: StageResult) -> dict:
    """The committed table of a tokens stage result (rows, score meaning, counts)."""
    return store.read_json(result.details["table"])
