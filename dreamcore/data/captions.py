"""Caption strategies, with SimpleTuner's meanings.

- "instanceprompt": every image gets the configured instance prompt.
- "textfile": the sibling ``<stem>.txt``; each non-empty line is an alternative caption.
- "filename": the file name itself, made readable.
- "parquet": a Parquet or JSONL metadata table (see dreamcore.data.metadata), passed in as
  ``metadata``.
- "huggingface": the caption column of a huggingface dataset (dreamcore.data.huggingface), passed in
  as ``metadata`` keyed by the rows' file names.

The file system is reached only through ``read_text`` so the same code runs over fsspec.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dreamcore.data.metadata import CaptionMetadata

CAPTION_STRATEGIES = ("instanceprompt", "textfile", "filename", "parquet", "huggingface")

# "dog_3", "dog-12", "dog (2)", "dog(2)": counters that file managers add to duplicates.
_DUPLICATE_COUNTER = re.compile(r"(?:[-_]\d+|\s*\(\d+\))$")


@dataclass(frozen=True)
class CaptionResult:
    """Captions for one image; empty ``captions`` means the caller should reject the image."""

    captions: list[str]
    reason: str = ""  # "" when captions were found; otherwise why not, for the user

    @property
    def ok(self) -> bool:
        """True when at least one caption was found."""
        return bool(self.captions)


def caption_for(
    relative_path: str,
    strategy: str,
    *,
    instance_prompt: str | None,
    read_text: Callable[[str], str | None],
    metadata: CaptionMetadata | None = None,
) -> CaptionResult:
    """Return the caption(s) for the image at ``relative_path`` ("/"-separated) by ``strategy``.

    ``read_text(path)`` returns a file's text, or None when it does not exist; ``metadata`` is the
    dataset's caption table (strategy "parquet"). Raises ValueError for an unknown strategy, for
    "instanceprompt" without an instance_prompt, or for "parquet" without metadata.
    """
    if strategy == "instanceprompt":
        if instance_prompt is None or not instance_prompt.strip():
            raise ValueError(
                "caption_strategy 'instanceprompt' needs an instance_prompt "
                "(e.g. 'a photo of sks dog'); set it or choose 'textfile' or 'filename'"
            )
        return CaptionResult([instance_prompt.strip()])
    if strategy == "textfile":
        return _captions_from_textfile(relative_path, read_text)
    if strategy == "filename":
        caption = caption_from_filename(relative_path)
        if not caption:
            return CaptionResult([], f"file name gives an empty caption: {relative_path}")
        return CaptionResult([caption])
    if strategy in ("parquet", "huggingface"):
        if metadata is None:
            raise ValueError(
                f"caption_strategy {strategy!r} needs the dataset's caption metadata table "
                "(load it with dreamcore.data.metadata.load_caption_metadata and pass metadata=)"
            )
        captions, reason = metadata.lookup(relative_path)
        return CaptionResult(captions, reason)
    raise ValueError(
        f"unknown caption_strategy {strategy!r}; use one of {', '.join(CAPTION_STRATEGIES)}"
    )


def caption_path(relative_path: str) -> str:
    """The caption file that belongs to an image: same folder and stem, ".txt" suffix."""
    return posixpath.splitext(relative_path)[0] + ".txt"


def caption_from_filename(relative_path: str) -> str:
    """Turn "photos/sks_dog-on-grass_2.jpg" into "sks dog on grass"."""
    stem = posixpath.splitext(posixpath.basename(relative_path))[0]
    stem = _DUPLICATE_COUNTER.sub("", stem)
    return " ".join(stem.replace("_", " ").replace("-", " ").split())


def _captions_from_textfile(
    relative_path: str, read_text: Callable[[str], str | None]
) -> CaptionResult:
    path = caption_path(relative_path)
    text = read_text(path)
    if text is None:
        return CaptionResult([], f"caption file missing: {path}")
    lines = (line.strip() for line in text.lstrip("\ufeff").splitlines())
    captions = [" ".join(line.split()) for line in lines if line]
    if not captions:
        return CaptionResult([], f"caption file empty: {path}")
    return CaptionResult(captions)
