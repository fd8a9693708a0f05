"""Stage "ingest": decode and validate every image of a dataset, write a Parquet manifest.

Broken files are excluded with a reason (never a crash); a dataset left with no usable image
stops the run with a message naming it. The stage key covers the dataset's file contents, so an
unchanged dataset is not decoded again and a changed image re-ingests.
"""

from __future__ import annotations

import posixpath
from collections.abc import MutableMapping
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from dreamcore.config import DatasetSpec
from dreamcore.data.captions import caption_for, caption_path
from dreamcore.data.huggingface import huggingface_captions
from dreamcore.data.images import IMAGE_EXTENSIONS, content_digest, inspect_image, is_image_name
from dreamcore.data.metadata import CaptionMetadata, load_caption_metadata
from dreamcore.data.sources import dataset_fs, dataset_location
from dreamcore.storage import (
    ArtifactStore,
    StageResult,
    digest_of,
    run_stage,
    stage_key,
)
from dreamcore.storage.parquet import parquet_to_rows, rows_to_parquet

STAGE = "ingest"
VERSION = 1
MANIFEST = "manifest.parquet"
MANIFEST_COLUMNS = ("path", "digest", "width", "height", "mode", "captions", "status", "reason")


class EmptyDatasetError(RuntimeError):
    """No usable image is left in a dataset."""


class DatasetChangedError(RuntimeError):
    """A dataset's files changed between planning its ingest and running it."""


@dataclass(frozen=True)
class SourceFile:
    """One image of a dataset: its path relative to the dataset folder and its content digest."""

    path: str
    digest: str


@dataclass(frozen=True)
class DatasetSource:
    """A dataset folder reached through fsspec, with the digests of everything ingest reads."""

    spec: DatasetSpec
    images: tuple[SourceFile, ...]
    captions: dict[str, str]  # caption file path -> digest (textfile strategy only)
    metadata: CaptionMetadata | None = None  # the caption table (parquet and huggingface strategies)
    skipped: tuple[tuple[str, str], ...] = ()  # (path, reason) of the files ingest does not read

    def fingerprint(self) -> str:
        """Digest of every input file's content: the part of the stage key that data changes."""
        material = {
            "images": [(f.path, f.digest) for f in self.images],
            "captions": self.captions,
            "metadata": self.metadata.digest if self.metadata else None,
        }
        if self.skipped:  # the manifest lists them; a folder without any keeps its earlier key
            material["skipped"] = [path for path, _ in self.skipped]
        return digest_of(material)


@dataclass(frozen=True)
class IngestOutcome:
    """The stage result plus how many images this call decoded (0 when it was already done)."""

    result: StageResult
    decoded: int


def ingest_config(spec: DatasetSpec) -> dict:
    """The dataset fields that ingest reads (and so the ones in its stage key)."""
    return {
        "id": spec.id,
        "dataset_type": spec.dataset_type,
        "caption_strategy": spec.caption_strategy if needs_captions(spec) else None,
        "instance_prompt": spec.instance_prompt if needs_captions(spec) else None,
        "parquet": spec.parquet.model_dump() if needs_captions(spec) and spec.parquet else None,
        "minimum_image_size": spec.minimum_image_size,
        "resolution_type": spec.resolution_type,
    }


def scan_dataset(spec: DatasetSpec) -> DatasetSource:
    """List a dataset's images (recursively) and digest their bytes; nothing is decoded."""
    fs, root = dataset_fs(spec)
    if not fs.isdir(root):
        raise FileNotFoundError(f"dataset {spec.id!r}: {dataset_location(spec)} does not exist or is not a folder")
    files = sorted(_relative(root, p) for p in fs.find(root))
    names = [name for name in files if is_image_name(name)]
    images = tuple(SourceFile(name, content_digest(fs.cat_file(posixpath.join(root, name)))) for name in names)
    captions: dict[str, str] = {}
    if needs_captions(spec) and spec.caption_strategy == "textfile":
        present = set(files)
        for name in names:
            if caption_path(name) in present:
                captions[caption_path(name)] = content_digest(fs.cat_file(posixpath.join(root, caption_path(name))))
    metadata = None
    if needs_captions(spec) and spec.caption_strategy == "parquet":
        metadata = load_caption_metadata(spec)
    if needs_captions(spec) and spec.caption_strategy == "huggingface":
        metadata = huggingface_captions(spec, fs)
    used = set(names) | set(captions) | ({spec.parquet.path} if metadata is not None and spec.parquet else set())
    skipped = tuple((name, skip_reason(spec, name)) for name in files if name not in used)
    return DatasetSource(spec, images, captions, metadata, skipped)


def skip_reason(spec: DatasetSpec, name: str) -> str:
    """Why ingest does not read a file of the dataset folder (one that is not an image or its caption)."""
    extension = posixpath.splitext(name)[1].lower()
    if extension == ".gif":
        return "GIF is not read (animated images are not supported); convert it to PNG or JPEG to train on it"
    if extension == ".txt":
        if needs_captions(spec) and spec.caption_strategy == "textfile":
            return "caption file without an image of the same name"
        return f"text file not read: caption_strategy is {spec.caption_strategy!r}"
    return f"not an image file ({extension or 'no extension'}); images are {', '.join(IMAGE_EXTENSIONS)}"


def ingest_key(source: DatasetSource) -> str:
    """Stage key of ingesting this dataset as it is now."""
    return stage_key(STAGE, VERSION, ingest_config(source.spec), upstream={"files": source.fingerprint()})


class IngestPlan(BaseModel):
    """One dataset's ingest, keyed once: the dataset, the digest of its files when planned, and the key.

    The plan carries the digest of the files, not their list: a dataset of many thousand images would make a
    list too large for a Prefect parameter, and the stage must read the folder anyway to decode it. So the stage
    scans again and checks its scan against `files` (a dataset changed in between is an error naming it, never a
    manifest filed under the key of other data) and runs under the plan's key: the key is computed once.
    """

    model_config = ConfigDict(frozen=True)

    spec: DatasetSpec
    files: str = Field(description="DatasetSource.fingerprint() of the scan the key was computed from")
    key: str


def plan_ingest(spec: DatasetSpec) -> IngestPlan:
    """The ingest plan of a dataset as its files are now (scanned and digested; nothing decoded)."""
    source = scan_dataset(spec)
    return IngestPlan(spec=spec, files=source.fingerprint(), key=ingest_key(source))


def planned_once(spec: DatasetSpec, plans: MutableMapping[str, IngestPlan]) -> IngestPlan:
    """The run's ingest plan of `spec` from `plans` (by dataset id), planned and added there when the run has
    none yet for this very spec: a dataset two steps ingest (the masks step's images, then the ingest step) is
    scanned and keyed once per run."""
    plan = plans.get(spec.id)
    if plan is None or plan.spec != spec:
        plan = plans[spec.id] = plan_ingest(spec)
    return plan


def ingest_planned(store: ArtifactStore, plan: IngestPlan) -> IngestOutcome:
    """Run (or reuse) a planned ingest: the dataset's files must still be those the plan was keyed on."""
    source = scan_dataset(plan.spec)
    if source.fingerprint() != plan.files:
        raise DatasetChangedError(
            f"dataset {plan.spec.id!r}: the files in {dataset_location(plan.spec)} changed after its ingest was "
            "planned (while the run was going on); run again once the dataset stays as it is"
        )
    return ingest_dataset(store, source, key=plan.key)


def ingest_dataset(store: ArtifactStore, source: DatasetSource, key: str | None = None) -> IngestOutcome:
    """Run (or reuse) the ingest stage for one scanned dataset, under `key` when its plan has it."""
    key = key or ingest_key(source)
    decoded = 0

    def build(folder: str) -> StageResult:
        nonlocal decoded
        rows = _manifest_rows(source)
        decoded = len(rows)
        accepted = [r for r in rows if r["status"] == "ok"]
        if not accepted:
            raise EmptyDatasetError(_empty_message(source.spec, rows))
        store.write_bytes(f"{folder}/{MANIFEST}", _manifest_parquet(rows))
        return StageResult(
            stage=STAGE,
            key=key,
            output_uri=store.uri(folder),
            digest=digest_of(rows),
            counts={"accepted": len(accepted), "rejected": sum(r["status"] == "rejected" for r in rows)}
            | ({"skipped": len(source.skipped)} if source.skipped else {}),
            details={"dataset_id": source.spec.id, "manifest": f"{folder}/{MANIFEST}"},
        )

    # a generated dataset (masks/<key>/data, class_images/<key>/data) under the root is kept while this runs
    result, _ = run_stage(store, STAGE, key, build, reads=[source.spec.instance_data_dir or ""])
    return IngestOutcome(result, decoded)


def read_manifest(store: ArtifactStore, result: StageResult) -> list[dict]:
    """Rows of a committed ingest manifest."""
    return parquet_to_rows(store.read_bytes(result.details["manifest"]))


def _manifest_rows(source: DatasetSource) -> list[dict]:
    spec = source.spec
    fs, root = dataset_fs(spec)
    first_seen: dict[str, str] = {}
    rows = []
    for image in source.images:
        data = fs.cat_file(posixpath.join(root, image.path))
        check = inspect_image(
            data, minimum_image_size=spec.minimum_image_size, resolution_type=spec.resolution_type
        )
        row = {
            "path": image.path,
            "digest": check.digest,
            "width": check.width,
            "height": check.height,
            "mode": check.mode_in,
            "captions": [],
            "status": check.status,
            "reason": check.reason,
        }
        # Identical masks are normal (all-white ones, say); identical photos are a user mistake.
        if check.ok and check.digest in first_seen and spec.dataset_type != "conditioning":
            row.update(status="rejected", reason=f"exact duplicate of {first_seen[check.digest]}")
        elif check.ok:
            first_seen[check.digest] = image.path
            if needs_captions(spec):
                _attach_captions(row, source, fs, root)
        rows.append(row)
    rows += [{"path": path, "digest": None, "width": None, "height": None, "mode": None, "captions": [],
              "status": "skipped", "reason": reason} for path, reason in source.skipped]
    return rows


def _attach_captions(row: dict, source: DatasetSource, fs, root: str) -> None:
    spec = source.spec

    def read_text(relative: str) -> str | None:
        path = posixpath.join(root, relative)
        return fs.cat_file(path).decode("utf-8", errors="replace") if fs.exists(path) else None

    captions = caption_for(
        row["path"],
        spec.caption_strategy,
        instance_prompt=spec.instance_prompt,
        read_text=read_text,
        metadata=source.metadata,
    )
    row["captions"] = list(captions.captions)
    if not captions.ok:
        row.update(status="rejected", reason=captions.reason)


def _manifest_parquet(rows: list[dict]) -> bytes:
    import pyarrow as pa

    schema = pa.schema(
        [
            ("path", pa.string()),
            ("digest", pa.string()),
            ("width", pa.int32()),
            ("height", pa.int32()),
            ("mode", pa.string()),
            ("captions", pa.list_(pa.string())),
            ("status", pa.string()),
            ("reason", pa.string()),
        ]
    )
    return rows_to_parquet(rows, schema)


def _empty_message(spec: DatasetSpec, rows: list[dict]) -> str:
    if not any(r["status"] != "skipped" for r in rows):
        skipped = "".join(f"; skipped {r['path']}: {r['reason']}" for r in rows[:10])
        return f"dataset {spec.id!r}: no image files found in {dataset_location(spec)}{skipped}"
    reasons = "\n".join(f"  {r['path']}: {r['reason']}" for r in rows[:50])
    more = f"\n  ... and {len(rows) - 50} more" if len(rows) > 50 else ""
    return f"dataset {spec.id!r}: no usable image in {dataset_location(spec)}; every file was rejected:\n{reasons}{more}"


def needs_captions(spec: DatasetSpec) -> bool:
    """True for datasets whose images train with captions (not masks, not other conditioning)."""
    return spec.dataset_type in ("image", "eval")


def _relative(root: str, path: str) -> str:
    return posixpath.relpath(path, root)
