"""Local copies of stored files and folders, for libraries that read only local paths."""

from __future__ import annotations

from pathlib import Path

from fsspec.core import url_to_fs


def download_weights(uri: str, target: Path) -> Path:
    """A local copy of a file or folder URI (local paths are copied too: the store owns them)."""
    fs, path = url_to_fs(uri)
    local = target / Path(path.rstrip("/")).name
    fs.get(path, str(local), recursive=fs.isdir(path))
    return local
