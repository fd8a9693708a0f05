"""Helpers for Prefect artifacts: valid keys, and pictures embedded so they show on any storage."""

from __future__ import annotations

import base64

from dreamcore.storage import ArtifactStore

# Pictures up to this size are embedded in markdown artifacts; larger ones are linked by URI.
EMBED_LIMIT = 2_000_000


def embedded_picture(store: ArtifactStore, path: str, alt: str | None = None) -> str:
    """Markdown showing the PNG at `path` of the store (a link to its URI when it is too large)."""
    alt = alt or path.rsplit("/", 1)[-1]
    data = store.read_bytes(path)
    if len(data) > EMBED_LIMIT:
        return f"![{alt}]({store.uri(path)})"
    return f"![{alt}](data:image/png;base64,{base64.b64encode(data).decode('ascii')})"


def artifact_key(*parts: str) -> str:
    """An artifact key from parts (e.g. "ingest", a dataset id): lowercase letters, digits and dashes only."""
    text = "-".join(parts).lower()
    return "".join(c if c.isalnum() else "-" for c in text).strip("-")[:100]


def linkable(uri: str) -> str:
    """A URI an artifact can link to: local paths become file:// URLs."""
    return uri if "://" in uri else f"file://{uri}"
