"""Stage "text_cache": one row per unique caption per text-encoder fingerprint, in Parquet.

Captions come from the ingest manifests of every image dataset (all alternatives of textfile
captions). Rows live at the default text_embeds dataset's cache_dir (else
`<storage_root>/text_embeds`), or, for a dataset whose `text_embeds` names a text_embeds dataset (as in
SimpleTuner), at that dataset's location (its own index, details["text_embeds"]); rows are keyed by
caption + encoder fingerprint + dtype, so runs and
experiments with the same text encoders share them. The family encodes (ModelFamily.encode_captions):
SD rows hold prompt_embeds [T, D]; SDXL rows also hold the pooled embedding [P] (prompt_embeds = both
encoders' penultimate states); SD3 rows hold CLIP-L + CLIP-G + T5 states [77 + L, D] and both CLIP
pooled outputs; Flux rows hold T5 states [L, D], CLIP-L's pooled output and the T5 attention mask [L].
With caption dropout the empty caption "" is cached too, once (SD3: zeroed parts as its uncond settings say).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from dreamcore.cache.parquet_io import put_tensor, read_table, tensor_fields, torch_dtype, write_table
from dreamcore.cache.results import TextCacheDetails
from dreamcore.cache.shards import ShardedCache, ShardWrite
from dreamcore.cache.text_encoders import load_text_encoders, text_encoder_precisions
from dreamcore.config import RunConfig
from dreamcore.data.ingest import read_manifest
from dreamcore.models import ModelFamily, detect_family, family_named, model_fingerprint
from dreamcore.models.families.captions import CaptionSettings, EncodedCaptions
from dreamcore.storage import ArtifactStore, StageResult, digest_of, run_stage, stage_key

STAGE = "text_cache"
VERSION = 1
INDEX = "captions.parquet"


@dataclass(frozen=True)
class TextCacheJob:
    """What the text cache reads: image datasets' ingest results, the model, location and settings."""

    ingests: Mapping[str, StageResult]  # dataset id -> ingest result (datasets whose captions train)
    model_path: str
    location: str
    cache_dtype: str = "fp16"
    batch_size: int = 16
    shard_size: int = 256
    captions: CaptionSettings = field(default_factory=CaptionSettings)  # the family's (T5 length and padding)
    precisions: Mapping[str, str] = field(default_factory=dict)  # text encoder component -> quantised precision
    empty_caption: bool = False  # also cache "" (the caption a dropped sample trains on)
    # Captioned datasets whose text_embeds dataset lives elsewhere than `location`: dataset id -> text_embeds
    # dataset id, and text_embeds dataset id -> its location. Empty: every caption goes to `location`.
    routes: Mapping[str, str] = field(default_factory=dict)
    route_locations: Mapping[str, str] = field(default_factory=dict)
    family_name: str = ""  # the model's family as from_config detected it once; empty: detect it from model_path

    @classmethod
    def from_config(cls, config: RunConfig, ingests: Mapping[str, StageResult]) -> TextCacheJob:
        """The job for a run: captioned datasets' ingests, the default text_embeds location."""
        captioned = {d.id for d in config.datasets if d.dataset_type in ("image", "eval")}
        training = config.training
        family = detect_family(training.pretrained_model_name_or_path)  # once: every helper below is handed it
        location = text_cache_location(config, family)
        routes, route_locations = {}, {}
        for spec in config.datasets:
            if spec.id in captioned and spec.text_embeds:
                target = text_embeds_location(config, config.dataset(spec.text_embeds), family)
                if target != location:
                    routes[spec.id], route_locations[spec.text_embeds] = spec.text_embeds, target
        return cls(
            ingests={k: v for k, v in sorted(ingests.items()) if k in captioned},
            model_path=str(config.training.pretrained_model_name_or_path),
            location=location,
            cache_dtype=config.training.cache_dtype,
            batch_size=config.training.text_embed_batch_size,
            shard_size=config.training.cache_shard_size,
            captions=caption_settings(config, family),
            precisions=text_encoder_precisions(training, family),
            empty_caption=config.uses_caption_dropout,
            routes=dict(sorted(routes.items())),
            route_locations=dict(sorted(route_locations.items())),
            family_name=family.name,
        )

    def family(self) -> ModelFamily:
        """The model's family: the one the job was planned with (a lookup), else detected from the model."""
        return family_named(self.family_name) if self.family_name else detect_family(self.model_path)

    def encoder_fingerprint(self) -> str:
        """Digest of the family, every text encoder and tokenizer the family uses, and how they encode."""
        family = self.family()
        parts = {name: model_fingerprint(self.model_path, name) for name in family.text_components}
        return digest_of({"family": family.name, "parts": parts} | self.encoding_settings(family))[:16]

    def encoding_settings(self, family: ModelFamily) -> dict:
        """The settings that change the embeddings, only where they apply: keys of SD/SDXL rows encoded at
        full precision stay what they were before these settings existed."""
        settings = dict(family.caption_key(self.captions))
        if self.precisions:
            settings["precisions"] = dict(sorted(self.precisions.items()))
        return settings


@dataclass(frozen=True)
class TextCacheOutcome:
    """The committed result plus what this call did."""

    result: StageResult
    encoded: int
    reused: int


def caption_settings(config: RunConfig, family: ModelFamily | None = None) -> CaptionSettings:
    """How the family encodes captions for this run (T5 families: length and padding; with caption dropout,
    what the empty caption becomes), as the family reads them from the config (`family`: when already known)."""
    family = family or detect_family(config.training.pretrained_model_name_or_path)
    return family.caption_settings(config.training, config.uses_caption_dropout)


def text_cache_location(config: RunConfig, family: ModelFamily | None = None) -> str:
    """The default text_embeds dataset's cache_dir, else the family's folder under the storage root
    (`text_embeds`; the refiner's `text_embeds_refiner` keeps its text_encoder_2-only rows apart)."""
    for spec in config.datasets:
        if spec.dataset_type == "text_embeds" and spec.default and spec.cache_dir:
            return spec.cache_dir
    return _root_text_folder(config, family)


def text_embeds_location(config: RunConfig, spec, family: ModelFamily | None = None) -> str:
    """Where one text_embeds dataset's rows live: its cache_dir; the default one's location; else a folder of
    its own beside the default one under the storage root."""
    if spec.cache_dir:
        return spec.cache_dir
    return text_cache_location(config, family) if spec.default else f"{_root_text_folder(config, family)}-{spec.id}"


def _root_text_folder(config: RunConfig, family: ModelFamily | None = None) -> str:
    root = config.training.resolved_storage_root.rstrip("/")
    model = config.training.pretrained_model_name_or_path
    folder = (family or detect_family(model)).text_cache_folder if model else "text_embeds"
    return f"{root}/{folder}"


def text_cache_key(job: TextCacheJob) -> str:
    """Stage key: upstream ingest digests, dtype, location and the text encoders' fingerprint."""
    config = {"cache_dtype": job.cache_dtype, "location": job.location, "datasets": sorted(job.ingests)}
    if job.empty_caption:  # unset adds nothing: keys of runs without caption dropout stay the same
        config["empty_caption"] = job.captions.empty_caption_settings or True
    if job.routes:  # likewise: only runs that send captions to other text_embeds datasets
        config["routes"] = {dataset: job.route_locations[embeds] for dataset, embeds in job.routes.items()}
    upstream = {dataset_id: result.digest for dataset_id, result in job.ingests.items()}
    return stage_key(STAGE, VERSION, config, upstream, job.encoder_fingerprint())


def collect_captions(store: ArtifactStore, ingests: Mapping[str, StageResult]) -> list[str]:
    """Every distinct caption (all alternatives) of the accepted images, sorted."""
    captions: set[str] = set()
    for result in ingests.values():
        for row in read_manifest(store, result):
            if row["status"] == "ok":
                captions.update(row["captions"] or [])
    return sorted(captions)


def caption_key(caption: str, fingerprint: str, cache_dtype: str, settings: CaptionSettings | None = None) -> str:
    """Row key of one caption's embeddings (the empty caption's also holds its zeroing, when any)."""
    parts = {"caption": caption, "encoders": fingerprint, "dtype": cache_dtype}
    if caption == "" and settings is not None and settings.empty_caption_settings:
        parts["empty"] = settings.empty_caption_settings
    return digest_of(parts)[:32]


def cache_text_embeds(
    store: ArtifactStore,
    job: TextCacheJob,
    on_shard: Callable[[int, int], None] | None = None,
    device: str | None = None,
    *,
    key: str | None = None,
) -> TextCacheOutcome:
    """Run (or reuse) the text-embed cache for every caption of the run's datasets (`key`: the job's stage key
    when a plan holds it, else computed here)."""
    counts = {"encoded": 0, "reused": 0}
    key = key or text_cache_key(job)

    def build(folder: str) -> StageResult:
        fingerprint = job.encoder_fingerprint()
        written = {}
        for embeds_id, location in (None, job.location), *job.route_locations.items():
            datasets = {d: r for d, r in job.ingests.items() if job.routes.get(d) == embeds_id}
            captions = collect_captions(store, datasets)
            if job.empty_caption and "" not in captions:
                captions = ["", *captions]
            keyed = {caption: caption_key(caption, fingerprint, job.cache_dtype, job.captions) for caption in captions}
            cache = ShardedCache(location)
            present = cache.key_index()
            missing = [c for c, k in keyed.items() if k not in present]
            present.update(_encode_missing(job, cache, keyed, missing, on_shard, device).index)
            counts.update(encoded=counts["encoded"] + len(missing), reused=counts["reused"] + len(keyed) - len(missing))
            written[embeds_id] = (sorted(datasets), keyed, present, cache)
        return _write_index(store, job, key, folder, written)

    reads = [r.output_uri for r in job.ingests.values()] + [job.location]
    result, worked = run_stage(store, STAGE, key, build, reads=reads)
    if not worked:
        counts["reused"] = result.counts["captions"]
    return TextCacheOutcome(result, counts["encoded"], counts["reused"])


def encode_captions(pipe, captions: list[str], family: ModelFamily, settings: CaptionSettings) -> EncodedCaptions:
    """prompt_embeds [B, T, D], pooled [B, P] or None, T5 mask [B, T] or None: the family's encoding."""
    return family.encode_captions(pipe, captions, settings)


def _encode_missing(job, cache, keyed, missing, on_shard, device) -> ShardWrite:
    written = ShardWrite()
    if not missing:
        return written
    family = job.family()
    pipe = load_text_encoders(job.model_path, family, job.precisions, device)
    dtype = torch_dtype(job.cache_dtype)
    chunks = [missing[i : i + job.shard_size] for i in range(0, len(missing), job.shard_size)]
    for number, chunk in enumerate(chunks, start=1):
        rows = []
        for start in range(0, len(chunk), job.batch_size):
            part = chunk[start : start + job.batch_size]
            encoded = encode_captions(pipe, part, family, job.captions)
            rows.extend(_row(keyed[caption], caption, encoded, i, dtype) for i, caption in enumerate(part))
        written.write(cache, rows, _shard_schema())
        if on_shard is not None:
            on_shard(number, len(chunks))
    return written


def _row(key: str, caption: str, encoded: EncodedCaptions, i: int, dtype) -> dict:
    row = {"key": key, "caption": caption}
    embeds, pooled, mask = encoded.row(i)
    put_tensor(row, "prompt_embeds", embeds.to(dtype))
    put_tensor(row, "pooled_prompt_embeds", None if pooled is None else pooled.to(dtype))
    put_tensor(row, "prompt_attention_mask", mask)  # uint8 [T]
    return row


def _shard_schema():
    import pyarrow as pa

    return pa.schema(
        [
            ("key", pa.string()),
            ("caption", pa.string()),
            *tensor_fields("prompt_embeds"),
            *tensor_fields("pooled_prompt_embeds"),
            *tensor_fields("prompt_attention_mask"),
        ]
    )


def _write_index(store, job, key, folder, written: dict) -> StageResult:
    """One caption index per location: the default one's (details index / cache_uri) and, for each routed
    text_embeds dataset, its own (details["text_embeds"][id]: index, cache_uri, the datasets it serves)."""
    import pyarrow as pa

    schema = pa.schema([("caption", pa.string()), ("key", pa.string()), ("shard", pa.string())])
    totals = {"captions": 0, "shards": 0, "bytes": 0}
    indexes, digests = {}, []
    for embeds_id, (datasets, keyed, present, cache) in written.items():
        rows = [{"caption": caption, "key": key, "shard": present[key]} for caption, key in keyed.items()]
        index = f"{folder}/{INDEX}" if embeds_id is None else f"{folder}/captions-{embeds_id}.parquet"
        write_table(store, index, rows, schema)
        shards = sorted({r["shard"] for r in rows})
        totals = {"captions": totals["captions"] + len(rows), "shards": totals["shards"] + len(shards),
                  "bytes": totals["bytes"] + sum(cache.size_of(s) for s in shards)}
        indexes[embeds_id] = {"index": index, "cache_uri": cache.uri, "datasets": datasets}
        digests.append([(r["caption"], r["key"]) for r in rows])
    default = indexes.pop(None)
    details = TextCacheDetails(index=default["index"], cache_uri=default["cache_uri"],
                               family=job.family().name).model_dump()
    if indexes:  # unset adds nothing: results of runs that route no dataset stay as they were
        details["text_embeds"] = indexes
    return StageResult(
        stage=STAGE,
        key=key,
        output_uri=store.uri(folder),
        digest=digest_of(digests[0] if len(digests) == 1 else digests),
        counts=totals,
        details=details,
    )


def read_caption_index(store: ArtifactStore, result: StageResult) -> list[dict]:
    """Rows (caption, key, shard) of a committed text cache's default location."""
    return read_table(store, TextCacheDetails.of(result).index)


def routed_caption_indexes(store: ArtifactStore, result: StageResult) -> dict[str, tuple[list[dict], str]]:
    """dataset id -> (its caption rows, their cache location), for datasets whose text_embeds dataset has its own
    location (empty when none does)."""
    routed = {}
    for entry in result.details.get("text_embeds", {}).values():
        rows = read_table(store, entry["index"])
        routed.update({dataset_id: (rows, entry["cache_uri"]) for dataset_id in entry["datasets"]})
    return routed
