"""Tables and snippets of finder and look-alike results: terminal text, JSON rows, markdown."""

from __future__ import annotations

import json
from collections.abc import Sequence

from dreamcore.tokens.finder import TokenSearch
from dreamcore.tokens.lookalike import LookalikeCandidate

SCORE_MEANING = (
    "score = prior shift: mean cosine distance (0 = unmoved, up to 2) between the text encoder's "
    "states at the class word and end of text in 'a photo of <token> <class>' and in "
    "'a photo of <class>'; lower means the token carries less prior meaning."
)


def token_rows(search: TokenSearch) -> list[dict]:
    """One JSON-friendly row per suggestion: rank, token, ids per tokenizer, score."""
    return [
        {"rank": rank, "token": s.token, **{f"ids_{name}": ids for name, ids in s.ids.items()}, "score": s.score}
        for rank, s in enumerate(search.suggestions, start=1)
    ]


def lookalike_rows(ranked: Sequence[LookalikeCandidate]) -> list[dict]:
    """One JSON-friendly row per name: rank, name, tokens per tokenizer, similarities, score."""
    return [
        {
            "rank": rank,
            "name": c.name,
            **{f"tokens_{name}": count for name, count in c.tokens.items()},
            "class_similarity": c.class_similarity,
            "image_similarity": c.image_similarity,
            "score": c.score,
        }
        for rank, c in enumerate(ranked, start=1)
    ]


def text_table(rows: Sequence[dict]) -> str:
    """A fixed-width text table of rows sharing their keys (lists shown space-separated)."""
    if not rows:
        return "(no rows)"
    columns = list(rows[0])
    cells = [[_cell(row.get(column)) for column in columns] for row in rows]
    widths = [max(len(column), *(len(line[i]) for line in cells)) for i, column in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths)), "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(line, widths)) for line in cells]
    return "\n".join(line.rstrip() for line in lines)


def instance_prompt_snippet(search: TokenSearch) -> str:
    """The best suggestion as dataset config (multidatabackend.json) keys."""
    entry = {"caption_strategy": "instanceprompt", "instance_prompt": search.instance_prompt()}
    return json.dumps(entry, indent=2)


def summary(search: TokenSearch) -> str:
    """Counts of what the search scanned and why the rest was left out."""
    rejected = ", ".join(f"{reason}: {count}" for reason, count in sorted(search.rejected.items())) or "none"
    return f"vocabulary {search.vocabulary_size} tokens; {search.scanned} candidates scanned; left out: {rejected}"


def token_markdown(search: TokenSearch) -> str:
    """The markdown report: best instance prompt snippet, what the score means, counts."""
    return "\n".join(
        [
            f"# Rare token: `{search.instance_prompt()}`",
            "",
            "Dataset config (multidatabackend.json entry):",
            "",
            "```json",
            instance_prompt_snippet(search),
            "```",
            "",
            SCORE_MEANING,
            "",
            summary(search) + ".",
        ]
    )


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    if isinstance(value, float):
        return f"{value:.6f}"
    return str(value)
