"""fsspec artifact store: one root URL (local path, file://, s3://...), relative keys below it.

Writes are atomic: on a local filesystem a file is written under a temporary name and renamed;
object stores (s3) make a single PUT visible all at once, so they are written directly.
"""

from __future__ import annotations

import json
import os
import posixpath
import uuid
from typing import Any

import fsspec
from fsspec.core import url_to_fs

from dreamcore.storage.faults import access_fault, write_fault

# A lost S3 endpoint fails a call within seconds (refused) or about half a minute (black-holed), not
# after botocore's default 5 attempts with 60 s connect timeouts; explicit storage options win.
S3_DEFAULTS: dict[str, Any] = {
    "config_kwargs": {"connect_timeout": 10, "read_timeout": 120, "retries": {"max_attempts": 3, "mode": "standard"}},
}


class ArtifactStore:
    """Reads and writes artifacts under one root URL through fsspec.

    Paths given to methods are relative to the root ("ingest/ab12/manifest.parquet").
    Credentials come from the environment or fsspec's own config, never from arguments that
    might be logged.
    """

    def __init__(self, root: str, **storage_options: Any) -> None:
        self.root_url = root.rstrip("/")
        if self.root_url.startswith(("s3://", "s3a://")):
            storage_options = S3_DEFAULTS | storage_options
        self.storage_options = storage_options  # for libraries that open the root themselves (FSDP checkpoints)
        self.fs, self.root_path = url_to_fs(self.root_url, **storage_options)
        self.root_path = self.root_path.rstrip("/")
        self._local = _is_local(self.fs)
        if self._local:
            self.fs.makedirs(self.root_path, exist_ok=True)

    def __repr__(self) -> str:
        return f"ArtifactStore({self.root_url!r})"

    @property
    def is_local(self) -> bool:
        """True on a local filesystem (atomic renames and hard links), False on an object store."""
        return self._local

    def path(self, relative: str) -> str:
        """Filesystem path (no protocol) of a relative artifact path."""
        return posixpath.join(self.root_path, relative) if relative else self.root_path

    def uri(self, relative: str = "") -> str:
        """Full URL of a relative artifact path, e.g. s3://bucket/prefix/ingest/ab12."""
        return posixpath.join(self.root_url, relative) if relative else self.root_url

    def exists(self, relative: str) -> bool:
        return self.fs.exists(self.path(relative))

    def read_bytes(self, relative: str) -> bytes:
        return self.fs.cat_file(self.path(relative))

    def read_json(self, relative: str) -> Any:
        return json.loads(self.read_bytes(relative))

    def write_bytes(self, relative: str, data: bytes) -> str:
        """Write a file atomically; returns its URL. A full, read-only or refused target raises StorageFault
        naming the file and its stage (the temporary file is removed: nothing half-written remains)."""
        try:
            return self._write_bytes(relative, data)
        except OSError as error:
            fault = write_fault(self.uri(relative), relative, error)
            if fault is None:
                raise
            raise fault from error

    def check_access(self) -> None:
        """Reach the root once: StorageFault when credentials are missing or refused (an object store)."""
        try:
            self.fs.exists(self.root_path)
        except Exception as error:  # noqa: BLE001 - botocore's credential errors are not OSErrors
            fault = access_fault(self.root_url, error)
            if fault is None:
                raise
            raise fault from error

    def _write_bytes(self, relative: str, data: bytes) -> str:
        target = self.path(relative)
        if self._local:
            self.fs.makedirs(posixpath.dirname(target), exist_ok=True)
            temporary = f"{target}.tmp-{uuid.uuid4().hex}"
            try:
                self.fs.pipe_file(temporary, data)
                self.fs.mv(temporary, target)
            finally:
                if self.fs.exists(temporary):
                    self.fs.rm_file(temporary)
        else:
            self.fs.pipe_file(target, data)
        return self.uri(relative)

    def create_new(self, relative: str, data: bytes) -> bool:
        """Create the file only if it does not exist, atomically; True when this call created it. Local: a
        fully written temporary file hard-linked to its name (fails when it exists; readers never see half a
        file). S3: a conditional PUT (If-None-Match: *, s3fs mode="create")."""
        target = self.path(relative)
        if self._local:
            self.fs.makedirs(posixpath.dirname(target), exist_ok=True)
            temporary = f"{target}.tmp-{uuid.uuid4().hex}"
            try:
                with open(temporary, "wb") as stream:
                    stream.write(data)
                os.link(temporary, target)
                return True
            except FileExistsError:
                return False
            finally:
                if os.path.exists(temporary):
                    os.unlink(temporary)
        try:
            self.fs.pipe_file(target, data, mode="create")
        except FileExistsError:
            return False
        self.invalidate()
        return True

    def write_json(self, relative: str, value: Any) -> str:
        return self.write_bytes(relative, json.dumps(value, indent=2, sort_keys=True).encode())

    def list(self, relative: str) -> list[str]:
        """Relative paths of the files directly under a folder (empty if it does not exist)."""
        folder = self.path(relative)
        self.invalidate()
        if not self.fs.exists(folder):
            return []
        prefix_length = len(self.root_path) + 1
        return sorted(p[prefix_length:] for p in self.fs.ls(folder, detail=False))

    def remove(self, relative: str) -> None:
        """Delete a file or a folder tree; missing paths are ignored."""
        target = self.path(relative)
        if self.fs.exists(target):
            self.fs.rm(target, recursive=True)
        self.invalidate()

    def invalidate(self) -> None:
        """Drop cached listings (s3fs caches them; other writers may have changed the store)."""
        self.fs.invalidate_cache()

    def open_fs(self) -> fsspec.AbstractFileSystem:
        return self.fs


def modified_time(info: dict[str, Any]) -> float:
    """Modification time of an fsspec listing entry, as the store reports it (local: mtime; S3: LastModified)."""
    stamp = info.get("mtime") or info.get("LastModified") or info.get("last_modified") or info.get("created") or 0
    return stamp.timestamp() if hasattr(stamp, "timestamp") else float(stamp)


def _is_local(fs: fsspec.AbstractFileSystem) -> bool:
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    return protocol in ("file", "local")
