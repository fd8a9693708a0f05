"""Common-word filter for rare-token candidates: a shipped English wordlist or the user's own.

A good identifier is no word the text encoder has seen often, no inflection of one ("dogs") and
no piece of one ("phot" of "photo"): all of those arrive with meaning the training has to fight.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

SHIPPED_WORDLIST = "common_words.txt"

# Endings that turn a common word into another form of it: "dogs", "walked", "quickly".
_INFLECTIONS = ("s", "es", "ed", "d", "ing", "er", "ers", "est", "ly", "y", "ness", "ful")


@dataclass(frozen=True)
class CommonWords:
    """A set of common words and the rule that rejects them, their inflections and their pieces."""

    words: frozenset[str]
    source: str
    digest: str
    _pieces: frozenset[str] = field(repr=False, compare=False, default=frozenset())

    def rejection(self, candidate: str) -> str | None:
        """Why `candidate` is too common ("common word", "inflection of X", "piece of a common word"), or None."""
        text = candidate.lower()
        if text in self.words:
            return "common word"
        for ending in _INFLECTIONS:
            stem = text[: -len(ending)]
            if text.endswith(ending) and len(stem) >= 2 and _stems(stem) & self.words:
                return f"inflection of a common word ({ending!r})"
        if text in self._pieces:
            return "piece of a common word"
        return None


def _stems(stem: str) -> set[str]:
    """ "runn" (running) -> {"runn", "run"}; "bak" (baked) -> {"bak", "bake"}; "happi" -> "happy"."""
    forms = {stem, stem + "e"}
    if len(stem) >= 3 and stem[-1] == stem[-2]:
        forms.add(stem[:-1])
    if stem.endswith("i"):
        forms.add(stem[:-1] + "y")
    return forms


def load_common_words(path: str | Path | None = None) -> CommonWords:
    """The shipped English wordlist, or the user's file (one word per line, `#` comments)."""
    if path is None:
        text = resources.files("dreamcore.tokens").joinpath(SHIPPED_WORDLIST).read_text(encoding="utf-8")
        source = f"dreamcore/tokens/{SHIPPED_WORDLIST}"
    else:
        file = Path(path).expanduser()
        if not file.is_file():
            raise FileNotFoundError(f"wordlist {file} not found: give a text file with one common word per line")
        text = file.read_text(encoding="utf-8")
        source = str(file)
    return common_words_from(_words_in(text), source)


def common_words_from(words: list[str] | set[str] | frozenset[str], source: str = "given words") -> CommonWords:
    """A CommonWords filter from words in memory (lower-cased; blanks dropped)."""
    cleaned = frozenset(w.strip().lower() for w in words if w.strip())
    digest = hashlib.sha256("\n".join(sorted(cleaned)).encode()).hexdigest()[:16]
    return CommonWords(words=cleaned, source=source, digest=digest, _pieces=_all_pieces(cleaned))


def _words_in(text: str) -> list[str]:
    lines = (line.split("#", 1)[0].strip() for line in text.splitlines())
    return [line for line in lines if line]


def _all_pieces(words: frozenset[str]) -> frozenset[str]:
    """Every substring of at least two letters of every word: 3,000 words give ~100k pieces."""
    pieces: set[str] = set()
    for word in words:
        for start in range(len(word)):
            for end in range(start + 2, len(word) + 1):
                pieces.add(word[start:end])
    return frozenset(pieces)
