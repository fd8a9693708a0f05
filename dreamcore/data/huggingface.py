"""huggingface datasets (SimpleTuner's "type": "huggingface"), read offline through the `datasets` library.

dataset_name is a folder written by save_to_disk, a .parquet file (or glob), a folder of Parquet or image
files, or a hub id whose files are already on this machine (the hub cache, or the datasets library's
own cache under HF_HUB_OFFLINE=1). Nothing is downloaded: a dataset that is not here is an error.

As in SimpleTuner, the rows appear as image files named by their index ("0.jpg", "1.png", ...; the
extension follows the image's format), so ingest, the caches and the mask stages read them as they
read a folder; captions come from the caption column (SimpleTuner's caption rules) as a CaptionMetadata
table keyed by those names.
"""

from __future__ import annotations

import io
import posixpath
from pathlib import Path
from typing import Any

from fsspec import AbstractFileSystem
from fsspec.core import url_to_fs

from dreamcore.config import DatasetSpec
from dreamcore.data.images import content_digest
from dreamcore.data.metadata import CaptionMetadata

ROOT = "rows"  # the one virtual folder holding a dataset's row images
DEFAULT_CAPTION_COLUMN = "caption"  # SimpleTuner's default
_MAGIC = ((b"\x89PNG", "png"), (b"\xff\xd8", "jpg"), (b"BM", "bmp"), (b"II*\x00", "tif"), (b"MM\x00*", "tif"))


class DatasetNotLocalError(FileNotFoundError):
    """A huggingface dataset that is not on this machine (nothing is downloaded)."""


def huggingface_fs(spec: DatasetSpec):
    """(file system, root) over a huggingface dataset's image column."""
    return HuggingfaceRowsFileSystem(load_rows(spec), spec.image_column, spec.id), ROOT


def huggingface_captions(spec: DatasetSpec, fs: HuggingfaceRowsFileSystem) -> CaptionMetadata:
    """Captions by virtual file name, from the caption column as SimpleTuner reads it."""
    hf = spec.huggingface
    columns = spec.caption_column or DEFAULT_CAPTION_COLUMN
    description = hf.description_column if hf is not None else "description"
    captions = {}
    for name, index in fs.index_of.items():
        row = fs.rows[index]
        captions[name] = row_captions(row, columns, spec.fallback_caption_column, description)
    return CaptionMetadata(
        source=f"huggingface dataset {spec.dataset_name!r} column {columns!r}",
        digest=content_digest(repr(sorted(captions.items())).encode()),
        includes_extension=True,
        captions=captions,
    )


def row_captions(row: dict, columns: str | list[str], fallback: str | None, description: str) -> list[str]:
    """SimpleTuner's caption of one row: the caption column(s), else the fallback column, else the
    description column. A list of columns (or a column holding a list) gives alternative captions."""
    names = columns if isinstance(columns, list) else [columns]
    found = [text for name in names for text in _texts(_nested(row, name))]
    if not found and fallback:
        found = _texts(_nested(row, fallback))
    if not found and description in row:
        value = row[description]
        if isinstance(value, dict):
            parts = [str(value[k]) for k in ("main_subject", "description", "text") if value.get(k)]
            found = [" ".join(parts)] if parts else []
        else:
            found = _texts(value)
    return [" ".join(text.split()) for text in found if text.strip()]


def load_rows(spec: DatasetSpec):
    """The dataset's split as a datasets.Dataset, its image column left undecoded (bytes + path)."""
    try:
        import datasets
    except ImportError as error:
        raise RuntimeError(
            f"dataset {spec.id!r} is a huggingface dataset: install the datasets library (pip install datasets)"
        ) from error
    local = Path(spec.dataset_name).expanduser()
    if local.exists() or _is_parquet_glob(spec.dataset_name):
        rows = _load_local(datasets, spec, local)
    else:
        rows = _load_cached_hub_dataset(datasets, spec)
    if spec.image_column not in rows.column_names:
        raise ValueError(
            f"dataset {spec.id!r}: image_column {spec.image_column!r} is not a column of {spec.dataset_name!r} "
            f"(columns: {', '.join(rows.column_names)})"
        )
    if isinstance(rows.features[spec.image_column], datasets.Image):
        rows = rows.cast_column(spec.image_column, datasets.Image(decode=False))
    return rows


class HuggingfaceRowsFileSystem(AbstractFileSystem):
    """A read-only fsspec view of one image column: ROOT/<row index>.<ext> per row."""

    protocol = "dreamcore-huggingface"
    cachable = False  # the dataset on disk may change between two stages of one process (retraining)

    def __init__(self, rows, image_column: str, dataset_id: str) -> None:
        super().__init__()
        self.rows, self.image_column, self.dataset_id = rows, image_column, dataset_id
        self.index_of = {f"{i}.{_extension(self._value(i))}": i for i in range(len(rows))}

    def ls(self, path, detail=True, **kwargs):
        path = self._strip_protocol(path).strip("/")
        if path == "":
            entries = [{"name": ROOT, "type": "directory", "size": 0}]
        elif path == ROOT:
            entries = [{"name": f"{ROOT}/{name}", "type": "file", "size": None} for name in self.index_of]
        else:
            raise FileNotFoundError(path)
        return entries if detail else [entry["name"] for entry in entries]

    def info(self, path, **kwargs):
        path = self._strip_protocol(path).strip("/")
        if path in ("", ROOT):
            return {"name": path, "type": "directory", "size": 0}
        if posixpath.dirname(path) == ROOT and posixpath.basename(path) in self.index_of:
            return {"name": path, "type": "file", "size": None}
        raise FileNotFoundError(path)

    def cat_file(self, path, start=None, end=None, **kwargs) -> bytes:
        name = posixpath.basename(self._strip_protocol(path))
        if posixpath.dirname(self._strip_protocol(path).strip("/")) != ROOT or name not in self.index_of:
            raise FileNotFoundError(f"dataset {self.dataset_id!r} has no row image {path!r}")
        return _bytes_of(self._value(self.index_of[name]))[start:end]

    def _open(self, path, mode="rb", **kwargs):
        if mode != "rb":
            raise PermissionError(f"dataset {self.dataset_id!r} is read-only")
        return io.BytesIO(self.cat_file(path))

    def _value(self, index: int) -> Any:
        return self.rows[index][self.image_column]


def _load_local(datasets, spec: DatasetSpec, local: Path):
    """A save_to_disk folder, Parquet file(s), or a folder the datasets library reads (Parquet, images)."""
    split = spec.split
    try:
        if local.is_dir() and ((local / "state.json").exists() or (local / "dataset_dict.json").exists()):
            saved = datasets.load_from_disk(str(local))
            if isinstance(saved, datasets.DatasetDict):
                if split not in saved:
                    raise ValueError(f"split {split!r} is not in {str(local)!r} (splits: {', '.join(saved)})")
                return saved[split]
            return saved
        if local.is_file() or _is_parquet_glob(spec.dataset_name):
            return datasets.load_dataset("parquet", data_files={split: str(local)}, split=split, cache_dir=spec.cache_dir)
        return datasets.load_dataset(str(local), split=split, cache_dir=spec.cache_dir)
    except (ValueError, FileNotFoundError) as error:
        raise ValueError(f"dataset {spec.id!r}: cannot read huggingface dataset {spec.dataset_name!r}: {error}") from error


def _load_cached_hub_dataset(datasets, spec: DatasetSpec):
    """A hub id: its files from the local hub cache, else the datasets library's own cache; never the network."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        folder = snapshot_download(spec.dataset_name, repo_type="dataset", revision=spec.revision, local_files_only=True)
    except (LocalEntryNotFoundError, ValueError, OSError):
        folder = None
    if folder is not None:
        return _load_local(datasets, spec, Path(folder))
    # datasets.config.HF_HUB_OFFLINE (HF_HUB_OFFLINE=1 when datasets was imported) makes load_dataset read
    # only its cache; without it load_dataset would go to the hub, so it is not asked at all.
    if datasets.config.HF_HUB_OFFLINE:
        try:
            return datasets.load_dataset(spec.dataset_name, split=spec.split, revision=spec.revision,
                                         cache_dir=spec.cache_dir)
        except (ConnectionError, FileNotFoundError, ValueError):
            pass
    raise DatasetNotLocalError(
        f"dataset {spec.id!r}: huggingface dataset {spec.dataset_name!r} is not on this machine and dreamcore "
        "downloads nothing: put it in the hub cache (hf download --repo-type dataset "
        f"{spec.dataset_name}), or set dataset_name to a save_to_disk folder or a Parquet file"
    )


def _is_parquet_glob(name: str) -> bool:
    return any(c in name for c in "*?[") and name.endswith(".parquet")


def _nested(row: dict, name: str) -> Any:
    """row["a"]["b"] for "a.b" (SimpleTuner's nested caption columns); None where a part is missing."""
    value: Any = row
    for part in name.split(".") if name not in row else [name]:
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _texts(value: Any) -> list[str]:
    if value is None:
        return []
    values = value if isinstance(value, (list, tuple)) else [value]
    return [str(v) for v in values if v is not None and str(v).strip()]


def _bytes_of(value: Any) -> bytes:
    """An image cell's file bytes: an undecoded Image feature ({bytes, path}), raw bytes, a path, or a PIL image."""
    if isinstance(value, dict):
        if value.get("bytes"):
            return bytes(value["bytes"])
        value = value.get("path")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, str) and value:
        fs, path = url_to_fs(value)
        return fs.cat_file(path)
    if hasattr(value, "save"):  # a decoded PIL image (a column the datasets library decodes itself)
        buffer = io.BytesIO()
        value.save(buffer, format="PNG")
        return buffer.getvalue()
    return b""  # an empty cell: ingest rejects it as an empty file


def _extension(value: Any) -> str:
    """The image's format as a file extension; SimpleTuner's "jpg" when unknown (ingest then judges the bytes)."""
    path = value.get("path") if isinstance(value, dict) else value if isinstance(value, str) else None
    if path:
        suffix = posixpath.splitext(path)[1].lower().lstrip(".")
        if suffix in ("jpg", "jpeg", "png", "webp", "bmp", "tif", "tiff"):
            return suffix
    head = _bytes_of(value)[:12] if not (isinstance(value, dict) and not value.get("bytes")) else b""
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    return next((ext for magic, ext in _MAGIC if head.startswith(magic)), "jpg")
