"""The eval samples of a run, as TrainingBatches from the committed caches.

Source: the dataset_type "eval" datasets (eval_dataset_id picks one), whose latents are cached
here on first use (the same content-addressed VAE cache as training data; their captions are
already in the run's text cache), or, without eval datasets, a held-out fraction of the subject
images chosen by content (eval_dataset_fraction). Each image uses its first caption, samples are
grouped by bucket in a fixed order, so the same data always gives the same batches.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from dreamcore.cache.results import TextCacheDetails, VaeCacheDetails
from dreamcore.data.sampler import SampledBatch
from dreamcore.models import family_named
from dreamcore.storage import ArtifactStore, StageResult, committed_result, digest_of

if TYPE_CHECKING:
    from dreamcore.cache.batch import TrainingBatch
    from dreamcore.config import DatasetSpec, RunConfig


@dataclass
class EvalSet:
    """Fixed eval batches, what they are and a digest of their content."""

    batches: list[TrainingBatch] = field(default_factory=list)
    source: str = "none"
    paths: list[str] = field(default_factory=list)
    digest: str = "none"

    @property
    def size(self) -> int:
        return sum(b.size for b in self.batches)


class EvalRows(BaseModel):
    """Which cached rows the eval samples are (without their tensors): small and JSON, so an evaluate plan
    holds it and the stage materialises the batches once."""

    model_config = ConfigDict(frozen=True)

    text: StageResult | None = None
    datasets: dict[str, tuple[StageResult, list[str]]] = Field(
        default_factory=dict, description="dataset id -> (its VAE-cache result, the chosen rows' paths in order)")
    source: str = "none"
    digest: str = "none"


def load_eval_set(config: RunConfig, store: ArtifactStore) -> EvalSet:
    """The run's eval samples (an empty EvalSet when it has none). Needs ingest and the caches committed."""
    return materialise_eval_set(config, store, committed_eval_rows(config, store))


def eval_set_of_caches(config: RunConfig, store: ArtifactStore, vae_results: Mapping[str, StageResult],
                       text_result: StageResult) -> EvalSet:
    """The run's eval samples from the cache results a training already holds."""
    return materialise_eval_set(config, store, eval_rows_of_caches(config, store, vae_results, text_result))


def committed_eval_rows(config: RunConfig, store: ArtifactStore) -> EvalRows:
    """The run's eval rows from the committed ingests and caches of its data as it is now."""
    from dreamcore.cache.stages import committed_ingests

    ingests = committed_ingests(config, store)
    return _chosen_rows(config, store, _committed_text_cache(config, store, ingests),
                        lambda: _subject_caches(config, store, ingests), lambda spec: ingests[spec.id])


def eval_rows_of_caches(config: RunConfig, store: ArtifactStore, vae_results: Mapping[str, StageResult],
                        text_result: StageResult) -> EvalRows:
    """The run's eval rows from the cache stage's results (held-out rows of its subject caches); eval
    datasets are cached here on first use from their committed ingest."""
    def subject_caches() -> dict[str, StageResult]:
        return {d: r for d, r in vae_results.items() if not config.dataset(d).is_regularisation_data}

    return _chosen_rows(config, store, text_result, subject_caches, lambda spec: _committed_ingest(store, spec))


def materialise_eval_set(config: RunConfig, store: ArtifactStore, chosen: EvalRows) -> EvalSet:
    """The eval batches of these rows (read from their caches)."""
    from dreamcore.cache.vae import read_index

    if not chosen.datasets:
        return EvalSet()
    rows = {}
    for dataset_id, (result, paths) in chosen.datasets.items():
        by_path = {row["path"]: row for row in read_index(store, result)}
        rows[dataset_id] = (result, [by_path[path] for path in paths])
    batches, paths = _materialise(config, chosen.text, rows)
    return EvalSet(batches, chosen.source, paths, chosen.digest)


def _chosen_rows(config: RunConfig, store: ArtifactStore, text: StageResult,
                 subject_caches: Callable[[], Mapping[str, StageResult]],
                 ingest_of: Callable[[DatasetSpec], StageResult]) -> EvalRows:
    chosen = _eval_rows(config, store, subject_caches, ingest_of)
    if not chosen:
        return EvalRows()
    digest = digest_of({"text": text.digest, "rows": [(d, [r["key"] for r in rows]) for d, (_, rows) in chosen.items()]})
    source = ("eval datasets " if any(config.dataset(d).dataset_type == "eval" for d in chosen)
              else f"held-out {config.training.eval_dataset_fraction:.0%} of ") + ", ".join(sorted(chosen))
    datasets = {d: (result, [r["path"] for r in rows]) for d, (result, rows) in chosen.items()}
    return EvalRows(text=text, datasets=datasets, source=source, digest=digest[:20])


def _committed_text_cache(config: RunConfig, store: ArtifactStore, ingests) -> StageResult:
    from dreamcore.cache.stages import text_cache_job
    from dreamcore.cache.text import STAGE, text_cache_key

    result = committed_result(store, STAGE, text_cache_key(text_cache_job(config, ingests)))
    if result is None:
        raise RuntimeError("the run's text cache is not committed; run the cache stage first "
                           "(dreamcore run CONFIG --stage cache)")
    return result


def _committed_ingest(store: ArtifactStore, spec: DatasetSpec) -> StageResult:
    from dreamcore.data.ingest import STAGE, ingest_key, scan_dataset

    result = committed_result(store, STAGE, ingest_key(scan_dataset(spec)))
    if result is None:
        raise RuntimeError(f"eval dataset {spec.id!r} has no committed ingest for its current files; run the "
                           "ingest stage first (dreamcore run CONFIG --stage ingest)")
    return result


def _eval_rows(config: RunConfig, store: ArtifactStore, subject_caches: Callable[[], Mapping[str, StageResult]],
               ingest_of: Callable[[DatasetSpec], StageResult]) -> dict[str, tuple[StageResult, list[dict]]]:
    """dataset id -> (its VAE-cache result, the chosen index rows)."""
    from dreamcore.cache.batches import held_out_rows
    from dreamcore.cache.vae import read_index

    training = config.training
    evals = [d for d in config.datasets if d.dataset_type == "eval"]
    if training.eval_dataset_id:
        evals = [config.dataset(training.eval_dataset_id)]
        if evals[0].dataset_type != "eval":
            raise ValueError(f"eval_dataset_id {training.eval_dataset_id!r} is a {evals[0].dataset_type!r} dataset; "
                             "it must have dataset_type 'eval'")
    chosen = {}
    if evals:
        for spec in evals:
            result = _cache_eval_dataset(config, store, spec, ingest_of(spec))
            chosen[spec.id] = (result, sorted(read_index(store, result), key=lambda r: r["path"]))
    elif training.eval_dataset_fraction > 0:
        for dataset_id, result in subject_caches().items():
            chosen[dataset_id] = (result, held_out_rows(read_index(store, result), training.eval_dataset_fraction))
    return _capped(chosen, training.num_eval_images)


def _cache_eval_dataset(config: RunConfig, store: ArtifactStore, spec, ingest: StageResult) -> StageResult:
    from dreamcore.cache.vae import VaeCacheJob, VaeCacheSettings, cache_vae_latents

    training = config.training
    job = VaeCacheJob(spec=spec, ingest=ingest, model_path=str(training.pretrained_model_name_or_path),
                      storage_root=training.resolved_storage_root, settings=VaeCacheSettings.from_training(training))
    return cache_vae_latents(store, job).result


def _subject_caches(config: RunConfig, store: ArtifactStore, ingests) -> dict[str, StageResult]:
    from dreamcore.cache.stages import vae_cache_jobs
    from dreamcore.cache.vae import STAGE, vae_cache_key

    results = {}
    for dataset_id, job in vae_cache_jobs(config, ingests).items():
        if job.spec.is_regularisation_data:
            continue
        result = committed_result(store, STAGE, vae_cache_key(job))
        if result is None:
            raise RuntimeError(f"dataset {dataset_id!r} has no committed VAE cache; run the cache stage first")
        results[dataset_id] = result
    return results


def _capped(chosen: dict, limit: int | None) -> dict:
    if limit is None:
        return {d: v for d, v in chosen.items() if v[1]}
    capped, left = {}, limit
    for dataset_id in sorted(chosen):
        result, rows = chosen[dataset_id]
        if left > 0 and rows:
            capped[dataset_id] = (result, rows[:left])
            left -= len(capped[dataset_id][1])
    return capped


def _materialise(config: RunConfig, text: StageResult, chosen: dict) -> tuple[list[TrainingBatch], list[str]]:
    """Batches of at most train_batch_size samples, one bucket each, in a fixed order."""
    from dreamcore.cache.batches import CachedBatchSource, CachedDataset, ShardRows
    from dreamcore.cache.text import read_caption_index, routed_caption_indexes

    datasets, plans = [], []
    for dataset_id, (result, rows) in sorted(chosen.items()):
        rows = [r | {"captions": list(r["captions"][:1])} for r in rows]  # first caption: fixed text
        spec = config.dataset(dataset_id)
        datasets.append(CachedDataset(dataset_id, rows, ShardRows(VaeCacheDetails.of(result).cache_uri), False,
                                      config.mask_dataset(spec) is not None))
        for bucket in sorted({r["bucket"] for r in rows}):
            items = [i for i, r in enumerate(rows) if r["bucket"] == bucket]
            size = config.training.train_batch_size
            plans += [(dataset_id, bucket, tuple(items[i:i + size])) for i in range(0, len(items), size)]
    store = ArtifactStore(config.training.resolved_storage_root)
    text_rows = {r["caption"]: r for r in read_caption_index(store, text)}
    details = TextCacheDetails.of(text)
    source = CachedBatchSource(datasets, text_rows, details.cache_uri,
                               family=family_named(details.family), batch_size=config.training.train_batch_size,
                               aesthetic_score=config.training.data_aesthetic_score,
                               routed_text=routed_caption_indexes(store, text))
    batches = [source.materialise(SampledBatch(0, d, b, items)) for d, b, items in plans]
    return batches, [p for b in batches for p in b.paths]
