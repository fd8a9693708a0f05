"""Model files without loading a model: local folders, hub snapshots (never downloaded silently),
small pipeline JSON files, and content fingerprints of components.

Hub ids only ever touch the network for small JSON files while HF_HUB_OFFLINE is unset.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from pathlib import Path

logger = logging.getLogger(__name__)

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
OFFLINE_HINT = "download it first or point pretrained_model_name_or_path at a local folder"


# ---------------------------------------------------------------- fingerprints

_CHUNK = 1 << 20  # 1 MiB
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".ckpt", ".pt", ".pth")
_VOLATILE_KEYS = {"_diffusers_version", "transformers_version", "_name_or_path", "_commit_hash", "name_or_path"}


def model_fingerprint(path_or_id: str | Path, component: str | None = None, variant: str | None = None) -> str:
    """A 16-hex digest of one component's config and weights (`component` None: the folder itself).

    Stable across machines and library versions: hashes file names, sizes, configs without their
    version keys, and for big weight files the first, middle and last MiB (no paths, no mtimes).
    """
    root = local_model_folder(path_or_id)
    folder = root / component if component else root
    if not folder.is_dir():
        raise FileNotFoundError(f"{path_or_id}: component folder {component!r} not found at {folder}")
    files = _fingerprint_files(folder, variant)
    if not files:
        raise FileNotFoundError(f"{path_or_id}: no config or weight files in {folder} (variant {variant!r})")
    digest = hashlib.sha256()
    for name in files:
        digest.update(f"{name}\t{_file_digest(folder / name)}\n".encode())
    return digest.hexdigest()[:16]


def _fingerprint_files(folder: Path, variant: str | None) -> list[str]:
    """Config files plus the weights of one variant, preferring safetensors over pickles."""
    names = sorted(p.name for p in folder.iterdir() if p.is_file() and not _ignored(p.name))
    weights = [n for n in names if n.endswith(_WEIGHT_SUFFIXES) and _variant_of(n) == variant]
    safetensors = [n for n in weights if n.endswith(".safetensors")]
    configs = [n for n in names if not n.endswith(_WEIGHT_SUFFIXES)]
    return configs + (safetensors or weights)


def _ignored(name: str) -> bool:
    return name.startswith(".") or name.endswith((".md", ".index.json", ".lock"))


def _variant_of(weight_name: str) -> str | None:
    """"diffusion_pytorch_model.fp16.safetensors" (or a shard "...fp16-00001-of-00002...") -> "fp16"."""
    parts = weight_name.split(".")
    return re.sub(r"-\d{5}-of-\d{5}$", "", parts[-2]) if len(parts) > 2 else None


def _file_digest(path: Path) -> str:
    size = path.stat().st_size
    if path.suffix == ".json":
        return _json_digest(path)
    hasher = hashlib.sha256(str(size).encode())
    with path.open("rb") as handle:
        if size <= 3 * _CHUNK:
            hasher.update(handle.read())
        else:
            for offset in (0, size // 2, size - _CHUNK):
                handle.seek(offset)
                hasher.update(handle.read(_CHUNK))
    return hasher.hexdigest()


def _json_digest(path: Path) -> str:
    """Digest of a JSON file's content without the library-version keys that re-saving changes."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if isinstance(data, dict):
        data = {key: value for key, value in data.items() if key not in _VOLATILE_KEYS}
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


# ---------------------------------------------------------------- local folders and hub ids


def hub_offline() -> bool:
    """True when HF_HUB_OFFLINE asks for no network access (read at call time, not import time)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def _is_hub_id(path_or_id: str | Path) -> bool:
    text = str(path_or_id)
    return not Path(text).expanduser().exists() and isinstance(path_or_id, str) and bool(_HUB_ID.match(text))


def read_pipeline_json(path_or_id: str | Path, filename: str, required: bool = True) -> dict | None:
    """Read a small JSON file of a pipeline from a local folder or (config only) from the hub."""
    if _is_hub_id(path_or_id):
        path = _hub_file(str(path_or_id), filename, required)
    else:
        path = local_model_folder(path_or_id) / filename
    if path is None or not path.is_file():
        if required:
            raise ValueError(
                f"{path_or_id} is not a diffusers pipeline folder: {filename} not found "
                "(expected a folder saved with DiffusionPipeline.save_pretrained or a hub snapshot)"
            )
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def _hub_file(repo_id: str, filename: str, required: bool) -> Path | None:
    """Path of one small file of a hub repo: cached, or downloaded only while online."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (
        LocalEntryNotFoundError,
        RemoteEntryNotFoundError,
        RepositoryNotFoundError,
    )

    offline = hub_offline()
    try:
        return Path(hf_hub_download(repo_id, filename, local_files_only=offline))
    except RemoteEntryNotFoundError:  # the repo exists but has no such file
        return None
    except LocalEntryNotFoundError as error:  # not cached, and offline or the hub unreachable
        if not required:
            return None
        if offline:
            raise FileNotFoundError(
                f"model {repo_id} not found locally and HF_HUB_OFFLINE=1: {OFFLINE_HINT}"
            ) from error
        raise FileNotFoundError(f"model {repo_id}: could not reach the hub ({error})") from error
    except RepositoryNotFoundError as error:
        raise FileNotFoundError(
            f"{repo_id} is neither a local folder nor a model on the Hugging Face hub "
            "(or it is private/gated: log in with `hf auth login`)"
        ) from error


def pipeline_source(path_or_id: str | Path) -> str:
    """What to pass to from_pretrained; raises the clear offline error for an uncached hub id."""
    if not _is_hub_id(path_or_id):
        return str(local_model_folder(path_or_id))
    _hub_file(str(path_or_id), "model_index.json", required=True)
    if hub_offline():
        # The cached snapshot folder: diffusers given the id spends seconds on offline hub look-ups.
        return str(local_model_folder(path_or_id))
    logger.warning("loading %s from the Hugging Face hub: weights not cached yet are downloaded", path_or_id)
    return str(path_or_id)


def local_model_folder(path_or_id: str | Path) -> Path:
    """A local folder for a path, or the cached snapshot folder of a hub id (never downloads)."""
    path = Path(path_or_id).expanduser()
    if path.is_dir():
        return path
    if path.exists():
        raise ValueError(f"{path} is a file; expected a model folder")
    if not _is_hub_id(path_or_id):
        raise FileNotFoundError(f"model folder {path} does not exist")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(snapshot_download(str(path_or_id), local_files_only=True))
    except LocalEntryNotFoundError as error:
        raise FileNotFoundError(
            f"model {path_or_id} is not in the local Hugging Face cache: {OFFLINE_HINT}"
        ) from error
