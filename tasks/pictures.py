"""Pictures in Prefect artifacts: embedded as data URIs, so they show whatever the storage is."""

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
