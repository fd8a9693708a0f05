"""Stage "vae_cache": every accepted image of a dataset, cropped to its bucket, as VAE latents in Parquet.

Rows are content-addressed (image digest + crop plan + VAE fingerprint + dtype + mask), so they are
shared by every run and experiment that uses the same location (cache_dir_vae, or by default
`<storage_root>/latents/<size settings digest>`). Missing rows are encoded bucket by bucket in
batches and written shard by shard; an interrupted stage finds its finished shards and encodes
only the rest. The stage folder `vae_cache/<key>/` holds this dataset's index (image -> row,
shard, bucket, captions); `_SUCCESS.json` is written last.
"""

from __future__ import annotations

import posixpath
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace

import numpy as np

from dreamcore.cache import conditioning
from dreamcore.cache.encode import encode_images, image_encoder_fingerprint, load_image_encoder, pixels_from_images
from dreamcore.cache.parquet_io import put_tensor, read_table, tensor_fields, torch_dtype, write_table
from dreamcore.cache.results import VaeCacheDetails
from dreamcore.cache.shards import ShardedCache, ShardWrite
from dreamcore.config import DatasetSpec, TrainingConfig
from dreamcore.data.buckets import BucketSettings, CropPlan, apply_plan, plan_crop
from dreamcore.data.images import content_digest, load_rgb
from dreamcore.data.ingest import read_manifest
from dreamcore.data.sources import dataset_fs
from dreamcore.models import ModelFamily, detect_family, family_named
from dreamcore.storage import ArtifactStore, StageResult, digest_of, run_stage, stage_key

STAGE = "vae_cache"
VERSION = 1
ROW_FORMAT = 1
INDEX = "index.parquet"


@dataclass(frozen=True)
class VaeCacheSettings:
    """Training-config fields the VAE cache reads (batch and shard sizes do not change rows)."""

    cache_dtype: str = "fp16"
    vae_batch_size: int = 4
    shard_size: int = 64
    alignment: int = 64

    @classmethod
    def from_training(cls, training: TrainingConfig) -> VaeCacheSettings:
        """Settings from a TrainingConfig."""
        return cls(
            training.cache_dtype, training.vae_batch_size, training.cache_shard_size, training.aspect_bucket_alignment
        )


@dataclass(frozen=True)
class ReferenceSource:
    """A reference dataset of an edit dataset (conditioning_type reference_strict / reference_loose) and its ingest."""

    spec: DatasetSpec
    ingest: StageResult


@dataclass(frozen=True)
class VaeCacheJob:
    """Everything one dataset's VAE cache reads: its spec, ingest result(s), model and settings."""

    spec: DatasetSpec
    ingest: StageResult
    model_path: str
    storage_root: str
    settings: VaeCacheSettings = VaeCacheSettings()
    masks: DatasetSpec | None = None
    masks_ingest: StageResult | None = None
    family_name: str = ""  # the model's family as the plan detected it once; empty: detect it from model_path
    references: tuple[ReferenceSource, ...] = ()  # an edit dataset's reference datasets, in conditioning_data order

    def family(self) -> ModelFamily:
        """The model's family: the one the job was planned with (a lookup), else detected from the model."""
        return family_named(self.family_name) if self.family_name else detect_family(self.model_path)

    @property
    def buckets(self) -> BucketSettings:
        return BucketSettings.from_spec(self.spec, self.settings.alignment)

    @property
    def location(self) -> str:
        """Where the rows live: cache_dir_vae, else a folder shared by datasets of equal size settings."""
        if self.spec.cache_dir_vae:
            return self.spec.cache_dir_vae
        return f"{self.storage_root.rstrip('/')}/latents/{digest_of(self.buckets.as_dict())[:16]}"

    def vae_fingerprint(self) -> str:
        """The VAE's fingerprint, or the pixel-space marker for a model without one (DeepFloyd IF)."""
        return image_encoder_fingerprint(self.model_path, self.family())


@dataclass(frozen=True)
class VaeCacheOutcome:
    """The committed result plus what this call did (encoded 0 when everything was cached)."""

    result: StageResult
    encoded: int
    reused: int
    shards_written: int


@dataclass(frozen=True)
class PlannedRow:
    """One accepted image with its crop plan, mask and row key; an edit image also with its references' rows."""

    manifest: dict
    plan: CropPlan
    mask: dict | None  # the mask's manifest row; None = no mask (or all-white when the dataset is masked)
    key: str
    source: DatasetSpec | None = None  # the dataset the file is read from; None: the job's own
    references: tuple[PlannedRow, ...] = ()


def vae_cache_key(job: VaeCacheJob) -> str:
    """Stage key: size settings, dtype, location, mask pairing, upstream digests, VAE fingerprint."""
    config = {
        "dataset": job.spec.id,
        "buckets": job.buckets.as_dict(),
        "cache_dtype": job.settings.cache_dtype,
        "location": job.location,
        "regularisation": job.spec.is_regularisation_data,
        "masks": job.masks.id if job.masks else None,
        "allow_missing_masks": job.masks.allow_missing_masks if job.masks else None,
    }
    upstream = {"ingest": job.ingest.digest, "masks": job.masks_ingest.digest if job.masks_ingest else None}
    if job.references:  # keyed only when present: the keys of runs without references stay as they were
        config["references"] = [(r.spec.id, r.spec.conditioning_type,
                                 BucketSettings.from_spec(r.spec, job.settings.alignment).as_dict())
                                for r in job.references]
        upstream["references"] = [r.ingest.digest for r in job.references]
    return stage_key(STAGE, VERSION, config, upstream, job.vae_fingerprint())


def plan_rows(store: ArtifactStore, job: VaeCacheJob) -> list[PlannedRow]:
    """Accepted images with their crop plans, paired masks and row keys."""
    accepted = [r for r in read_manifest(store, job.ingest) if r["status"] == "ok"]
    pairs: dict[str, dict | None] = {}
    if job.masks is not None:
        if job.masks_ingest is None:
            raise ValueError(f"dataset {job.spec.id!r}: masks dataset {job.masks.id!r} has no ingest result")
        pairs = conditioning.pair_masks(
            accepted,
            read_manifest(store, job.masks_ingest),
            dataset_id=job.spec.id,
            mask_dataset_id=job.masks.id,
            allow_missing=job.masks.allow_missing_masks,
        )
    fingerprint, buckets = job.vae_fingerprint(), job.buckets
    references = [(source, conditioning.pair_references(accepted, read_manifest(store, source.ingest),
                                                        dataset_id=job.spec.id, reference_dataset_id=source.spec.id))
                  for source in job.references]
    planned = []
    for row in accepted:
        plan = plan_crop(row["width"], row["height"], buckets, seed_material=row["digest"])
        mask = pairs.get(row["path"])
        mask_part = None if job.masks is None else (mask["digest"] if mask else "all-white")
        key = _row_key(row, plan, fingerprint, job.settings.cache_dtype, mask_part)
        paired = tuple(_reference_row(job, source, pairs_of[row["path"]], plan, fingerprint)
                       for source, pairs_of in references)
        planned.append(PlannedRow(row, plan, mask, key, references=paired))
    return planned


def _row_key(manifest: dict, plan: CropPlan, fingerprint: str, dtype: str, mask_part: str | None) -> str:
    """A cache row's key: everything its tensors depend on."""
    return digest_of({"format": ROW_FORMAT, "image": manifest["digest"], "plan": asdict(plan), "vae": fingerprint,
                      "dtype": dtype, "mask": mask_part})[:32]


def _reference_row(job: VaeCacheJob, source: ReferenceSource, manifest: dict, edit_plan: CropPlan,
                   fingerprint: str) -> PlannedRow:
    """A reference image's row: reference_strict takes its edit image's plan (the reference resized to the edit's
    size, then the same resize and crop box: same bucket); reference_loose is bucketed on its own settings."""
    size = (manifest["width"], manifest["height"])
    if source.spec.conditioning_type == "reference_strict":
        plan = replace(edit_plan, original_size=size)
    else:
        plan = plan_crop(*size, BucketSettings.from_spec(source.spec, job.settings.alignment),
                         seed_material=manifest["digest"])
    return PlannedRow(manifest, plan, None, _row_key(manifest, plan, fingerprint, job.settings.cache_dtype, None),
                      source=source.spec)


def cache_vae_latents(
    store: ArtifactStore,
    job: VaeCacheJob,
    on_shard: Callable[[int, int], None] | None = None,
    device: str | None = None,
    *,
    key: str | None = None,
) -> VaeCacheOutcome:
    """Run (or reuse) the VAE cache of one dataset. `on_shard(done, total)` reports progress; `key`: the job's
    stage key when a plan holds it (else computed here)."""
    counts = {"encoded": 0, "reused": 0, "shards": 0}
    key = key or vae_cache_key(job)

    def build(folder: str) -> StageResult:
        planned = plan_rows(store, job)
        cache = ShardedCache(job.location)
        present = cache.key_index()
        every = planned + [reference for p in planned for reference in p.references]
        missing = _unique([p for p in every if p.key not in present])
        written = _encode_missing(job, cache, missing, on_shard, device)
        present.update(written.index)
        counts.update(encoded=len(missing), reused=len(planned) - len(missing), shards=len(written.shards))
        return _write_index(store, job, key, folder, planned, present, cache)

    reads = [r.output_uri for r in (job.ingest, job.masks_ingest, *(s.ingest for s in job.references))
             if r is not None] + [job.location]
    result, worked = run_stage(store, STAGE, key, build, reads=reads)
    if not worked:
        counts["reused"] = result.counts["images"]
    return VaeCacheOutcome(result, counts["encoded"], counts["reused"], counts["shards"])


def _encode_missing(job, cache, missing, on_shard, device) -> ShardWrite:
    written = ShardWrite()
    if not missing:
        return written
    chunks = _shard_chunks(missing, job.settings.shard_size)
    vae = load_image_encoder(job.model_path, device, job.family())
    for number, chunk in enumerate(chunks, start=1):
        rows = _encode_chunk(job, vae, chunk)
        written.write(cache, rows, _shard_schema())
        if on_shard is not None:
            on_shard(number, len(chunks))
    return written


def _shard_chunks(rows: list[PlannedRow], shard_size: int) -> list[list[PlannedRow]]:
    """Rows grouped by bucket (so batches stack), then cut into shards."""
    by_bucket: dict[str, list[PlannedRow]] = {}
    for row in sorted(rows, key=lambda r: r.key):
        by_bucket.setdefault(row.plan.bucket, []).append(row)
    return [
        group[i : i + shard_size] for _, group in sorted(by_bucket.items()) for i in range(0, len(group), shard_size)
    ]


def _encode_chunk(job: VaeCacheJob, vae, chunk: list[PlannedRow]) -> list[dict]:
    """Encode one shard's rows in VAE batches; returns the shard's row dicts."""
    dtype = torch_dtype(job.settings.cache_dtype)
    rows = []
    # Opened once per shard: a huggingface dataset's file system loads the dataset.
    masks = dataset_fs(job.masks) if job.masks is not None else None
    for part, pixels in _prepared_batches(job, chunk):
        latents = encode_images(vae, pixels)
        for planned, latent in zip(part, latents):
            if not latent.isfinite().all():
                raise FloatingPointError(
                    f"dataset {job.spec.id!r}: cached latents of {planned.manifest['path']} are not finite"
                )
            rows.append(_shard_row(job, planned, latent.to(dtype), tuple(latent.shape[-2:]), masks))
    return rows


def _prepared_batches(job: VaeCacheJob, chunk: list[PlannedRow]):
    """(rows, pixels [B, 3, H, W]) per VAE batch; the next batch is read and cropped in a thread
    while the current one encodes (PIL and torch both release the GIL), hiding the image work."""
    sources = {spec.id: (spec, dataset_fs(spec)) for spec in (job.spec, *(r.spec for r in job.references))}

    def read(row: PlannedRow):
        spec, files = sources[(row.source or job.spec).id]
        return apply_plan(load_rgb(_read_file(spec, files, row.manifest)), row.plan)

    def prepare(part: list[PlannedRow]):
        return pixels_from_images([read(p) for p in part])

    size = job.settings.vae_batch_size
    parts = [chunk[i : i + size] for i in range(0, len(chunk), size)]
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(prepare, parts[0])
        for number, part in enumerate(parts):
            pixels = pending.result()
            if number + 1 < len(parts):
                pending = pool.submit(prepare, parts[number + 1])
            yield part, pixels


def _shard_row(job: VaeCacheJob, planned: PlannedRow, latent, latent_hw: tuple[int, int], masks) -> dict:
    import torch

    plan = planned.plan
    row = {
        "key": planned.key,
        "image_digest": planned.manifest["digest"],
        "original_width": plan.original_size[0],
        "original_height": plan.original_size[1],
        "resized_width": plan.resized_size[0],
        "resized_height": plan.resized_size[1],
        "crop_top": plan.crop_top,
        "crop_left": plan.crop_left,
        "target_width": plan.target_size[0],
        "target_height": plan.target_size[1],
    }
    put_tensor(row, "latents", latent)
    mask = None
    if job.masks is not None and planned.source is None:  # references carry no mask
        size = (latent_hw[1], latent_hw[0])
        if planned.mask is None:
            mask = conditioning.white_mask(size)
        else:
            image = load_rgb(_read_file(job.masks, masks, planned.mask))
            mask = conditioning.mask_at_latent_size(conditioning.crop_mask(image, plan, planned.manifest["path"]), size)
    put_tensor(row, "mask", None if mask is None else torch.from_numpy(np.array(mask)))
    return row


def _read_file(spec: DatasetSpec, files, manifest_row: dict) -> bytes:
    """A dataset file's bytes (files: the dataset's opened (fs, root)), checked against the digest ingest recorded."""
    fs, root = files
    data = fs.cat_file(posixpath.join(root, manifest_row["path"]))
    if content_digest(data) != manifest_row["digest"]:
        raise RuntimeError(
            f"dataset {spec.id!r}: {manifest_row['path']} changed since ingest; run the ingest stage again"
        )
    return data


def _unique(rows: list[PlannedRow]) -> list[PlannedRow]:
    seen: dict[str, PlannedRow] = {}
    for row in rows:
        seen.setdefault(row.key, row)
    return list(seen.values())


def _shard_schema():
    import pyarrow as pa

    ints = [
        (n, pa.int32())
        for n in (
            "original_width",
            "original_height",
            "resized_width",
            "resized_height",
            "crop_top",
            "crop_left",
            "target_width",
            "target_height",
        )
    ]
    return pa.schema(
        [("key", pa.string()), ("image_digest", pa.string()), *ints, *tensor_fields("latents"), *tensor_fields("mask")]
    )


def _index_schema():
    import pyarrow as pa

    return pa.schema(
        [
            ("path", pa.string()),
            ("key", pa.string()),
            ("shard", pa.string()),
            ("bucket", pa.string()),
            ("target_width", pa.int32()),
            ("target_height", pa.int32()),
            ("captions", pa.list_(pa.string())),
            ("masked", pa.bool_()),
            ("references", pa.list_(pa.string())),  # an edit image's reference rows (keys), in dataset order
            ("reference_shards", pa.list_(pa.string())),
        ]
    )


def _write_index(store, job, key, folder, planned, present, cache) -> StageResult:
    rows = [
        {
            "path": p.manifest["path"],
            "key": p.key,
            "shard": present[p.key],
            "bucket": p.plan.bucket,
            "target_width": p.plan.target_size[0],
            "target_height": p.plan.target_size[1],
            "captions": list(p.manifest["captions"] or []),
            "masked": p.mask is not None,
            "references": [r.key for r in p.references],
            "reference_shards": [present[r.key] for r in p.references],
        }
        for p in planned
    ]
    write_table(store, f"{folder}/{INDEX}", rows, _index_schema())
    shards = sorted({r["shard"] for r in rows})
    histogram = dict(sorted(Counter(r["bucket"] for r in rows).items()))
    return StageResult(
        stage=STAGE,
        key=key,
        output_uri=store.uri(folder),
        digest=digest_of([(r["path"], r["key"]) for r in rows]),
        counts={
            "images": len(rows),
            "shards": len(shards),
            "bytes": sum(cache.size_of(s) for s in shards),
            "masked": sum(r["masked"] for r in rows),
        },
        details=VaeCacheDetails(dataset_id=job.spec.id, index=f"{folder}/{INDEX}", cache_uri=cache.uri,
                                buckets=histogram, is_regularisation=job.spec.is_regularisation_data).model_dump(),
    )


def read_index(store: ArtifactStore, result: StageResult) -> list[dict]:
    """Rows of a committed VAE cache index (one per image)."""
    return read_table(store, VaeCacheDetails.of(result).index)
