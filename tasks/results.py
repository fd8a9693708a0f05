"""Where Prefect persists task results: beside the stage outputs, on the same fsspec root."""

from __future__ import annotations

import hashlib
from pathlib import Path

from fsspec.core import url_to_fs

RESULTS_FOLDER = "_prefect_results"


def result_storage_for(storage_root: str):
    """A Prefect result storage on the artifact root: a Path locally, a saved block remotely.

    The remote block holds only the base path; credentials and endpoints come from the
    environment (AWS_*, FSSPEC_*), so nothing secret is stored in Prefect's database.
    """
    fs, path = url_to_fs(storage_root)
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    if protocol in ("file", "local"):
        folder = Path(path) / RESULTS_FOLDER
        folder.mkdir(parents=True, exist_ok=True)
        return folder
    from prefect.filesystems import RemoteFileSystem

    name = "dreamcore-results-" + hashlib.sha256(storage_root.encode()).hexdigest()[:12]
    block = RemoteFileSystem(basepath=f"{storage_root.rstrip('/')}/{RESULTS_FOLDER}")
    block.save(name, overwrite=True)
    return f"remote-file-system/{name}"
