"""Caption metadata tables (caption_strategy "parquet"): a Parquet or JSONL file of captions per image.

SimpleTuner's `parquet` block names the file and its columns: `filename_column` identifies the
image (its relative path or file name, with or without extension as
`identifier_includes_extension` says), `caption_column` holds a string or a list of alternative
captions, `fallback_caption_column` is used where the caption is empty. A `.jsonl` file holds one
JSON object per line with the same columns.
"""

from __future__ import annotations

import json
import posixpath
from dataclasses import dataclass, field

from fsspec.core import url_to_fs

from dreamcore.data.aws import aws_fs, aws_location, aws_root
from dreamcore.data.images import content_digest, is_image_name
from dreamcore.storage.parquet import parquet_to_rows

METADATA_SUFFIXES = (".parquet", ".jsonl")


@dataclass(frozen=True)
class CaptionMetadata:
    """Captions by image identifier, read from one metadata file."""

    source: str  # the file's path or URL, for messages
    digest: str  # sha256 of the file's bytes (part of the ingest key)
    includes_extension: bool
    captions: dict[str, list[str]] = field(default_factory=dict)

    def lookup(self, relative_path: str) -> tuple[list[str], str]:
        """(captions, reason) for an image; reason says why captions are empty."""
        path = relative_path if self.includes_extension else posixpath.splitext(relative_path)[0]
        for identifier in (path, posixpath.basename(path)):
            if identifier in self.captions:
                found = self.captions[identifier]
                return (found, "") if found else ([], f"empty caption for {identifier!r} in {self.source}")
        return [], f"no caption for {path!r} in {self.source}"


def metadata_location(instance_data_dir: str, path: str) -> str:
    """The metadata file's path or URL: absolute paths and URLs as given, others inside the dataset folder."""
    if "://" in path or posixpath.isabs(path):
        return path
    return posixpath.join(instance_data_dir.rstrip("/"), path)


def read_metadata_bytes(location: str) -> bytes:
    """The metadata file's bytes (a clear error when it is missing)."""
    fs, path = url_to_fs(location)
    if not fs.exists(path):
        raise FileNotFoundError(f"caption metadata file {location!r} does not exist (the dataset's parquet.path)")
    return fs.cat_file(path)


def parse_caption_metadata(
    data: bytes,
    *,
    source: str,
    filename_column: str = "id",
    caption_column: str = "caption",
    fallback_caption_column: str | None = None,
    identifier_includes_extension: bool = False,
) -> CaptionMetadata:
    """Parse a .parquet or .jsonl metadata file's bytes into captions by identifier."""
    records = _records(data, source)
    columns = {filename_column, caption_column} | ({fallback_caption_column} if fallback_caption_column else set())
    captions: dict[str, list[str]] = {}
    for number, record in enumerate(records, start=1):
        absent = sorted(c for c in columns if c not in record)
        if absent:
            raise ValueError(f"{source}: row {number} has no column(s) {absent}; it has {sorted(record)}")
        identifier = str(record[filename_column])
        if not identifier_includes_extension:
            identifier = posixpath.splitext(identifier)[0] if _has_image_suffix(identifier) else identifier
        found = _as_captions(record[caption_column])
        if not found and fallback_caption_column:
            found = _as_captions(record[fallback_caption_column])
        if identifier in captions:
            raise ValueError(f"{source}: image {identifier!r} appears twice (rows are keyed by {filename_column!r})")
        captions[identifier] = found
    return CaptionMetadata(source, content_digest(data), identifier_includes_extension, captions)


def load_caption_metadata(spec) -> CaptionMetadata:
    """Read the metadata table named by a dataset's `parquet` block."""
    if spec.parquet is None:
        raise ValueError(f"dataset {spec.id!r}: caption_strategy 'parquet' needs a parquet block")
    options = spec.parquet
    if spec.type == "aws" and "://" not in options.path and not posixpath.isabs(options.path):
        # Inside the bucket, read with the dataset's own endpoint and credentials.
        fs = aws_fs(spec)
        location = posixpath.join(aws_root(spec), options.path)
        if not fs.exists(location):
            raise FileNotFoundError(f"caption metadata file {options.path!r} is not in {aws_location(spec)}")
        data = fs.cat_file(location)
    else:
        location = metadata_location(spec.instance_data_dir, options.path)
        data = read_metadata_bytes(location)
    return parse_caption_metadata(
        data,
        source=location,
        filename_column=options.filename_column,
        caption_column=options.caption_column,
        fallback_caption_column=options.fallback_caption_column,
        identifier_includes_extension=options.identifier_includes_extension,
    )


def _records(data: bytes, source: str) -> list[dict]:
    if source.lower().endswith(".parquet"):
        return parquet_to_rows(data)
    if source.lower().endswith(".jsonl"):
        records = []
        for number, line in enumerate(data.decode("utf-8-sig").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as error:
                raise ValueError(f"{source}: line {number} is not JSON ({error.msg})") from error
        return records
    raise ValueError(f"{source}: caption metadata must be a {' or '.join(METADATA_SUFFIXES)} file")


def _as_captions(value) -> list[str]:
    if value is None:
        return []
    values = value if isinstance(value, (list, tuple)) else [value]
    return [" ".join(str(v).split()) for v in values if v is not None and str(v).strip()]


def _has_image_suffix(name: str) -> bool:
    return is_image_name(name)
