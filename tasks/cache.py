"""Prefect tasks for the cache stages: vae_cache (per image dataset) and text_cache (per run)."""

from __future__ import annotations

from prefect import get_run_logger
from prefect.artifacts import create_progress_artifact, create_table_artifact, update_progress_artifact

from dreamcore.cache.conditioning import MissingMaskError
from dreamcore.cache.results import TextCacheDetails, VaeCacheDetails
from dreamcore.cache.stages import TextCachePlan, VaeCachePlan
from dreamcore.cache.text import cache_text_embeds
from dreamcore.cache.vae import cache_vae_latents
from dreamcore.storage import ArtifactStore, StageResult
from tasks.artifacts import artifact_key
from tasks.stage_task import stage_task

_NOT_WORTH_RETRYING = (MissingMaskError, FileNotFoundError, ValueError, KeyError, FloatingPointError, RuntimeError)


_RETRIES = {"bad_input": _NOT_WORTH_RETRYING, "retries": 2, "retry_delay_seconds": 5}


@stage_task("vae_cache", name="vae_cache", task_run_name="vae-cache-{plan.job.spec.id}", **_RETRIES)
def vae_cache(plan: VaeCachePlan) -> StageResult:
    """Cache one image dataset's VAE latents (and its masks) in Parquet shards."""
    job = plan.job
    store = ArtifactStore(job.storage_root)
    dataset_id = job.spec.id
    progress = create_progress_artifact(
        0.0,
        key=artifact_key("vae-cache-progress", dataset_id),
        description=f"VAE cache shards written for `{dataset_id}`",
    )
    outcome = cache_vae_latents(
        store, job, on_shard=lambda done, total: update_progress_artifact(progress, 100.0 * done / total), key=plan.key
    )
    update_progress_artifact(progress, 100.0)
    result = outcome.result
    details = VaeCacheDetails.of(result)
    get_run_logger().info(
        "dataset %r: %d images, %d encoded in this run, %d reused from %s",
        dataset_id,
        result.counts["images"],
        outcome.encoded,
        outcome.reused,
        details.cache_uri,
    )
    batch = "one bucket per batch"
    create_table_artifact(
        key=artifact_key("vae-cache-buckets", dataset_id),
        table=[{"bucket": b, "images": n} for b, n in details.buckets.items()],
        description=f"Aspect buckets of `{dataset_id}` ({batch}); index {result.output_uri}",
    )
    _statistics(dataset_id, "vae-cache-stats", result, details.cache_uri, outcome.encoded, outcome.reused,
                outcome.shards_written)
    return result


@stage_task("text_cache", name="text_cache", task_run_name="text-cache", **_RETRIES)
def text_cache(plan: TextCachePlan, storage_root: str) -> StageResult:
    """Cache the text embeddings of every caption of the run."""
    store = ArtifactStore(storage_root)
    progress = create_progress_artifact(0.0, key="text-cache-progress", description="Text cache shards written")
    outcome = cache_text_embeds(
        store, plan.job, on_shard=lambda done, total: update_progress_artifact(progress, 100.0 * done / total),
        key=plan.key,
    )
    update_progress_artifact(progress, 100.0)
    result = outcome.result
    cache_uri = TextCacheDetails.of(result).cache_uri
    get_run_logger().info(
        "%d captions, %d encoded in this run, %d reused from %s",
        result.counts["captions"],
        outcome.encoded,
        outcome.reused,
        cache_uri,
    )
    _statistics("captions", "text-cache-stats", result, cache_uri, outcome.encoded, outcome.reused, None)
    return result


def _statistics(name: str, prefix: str, result: StageResult, cache_uri: str, encoded: int, reused: int,
                shards_written) -> None:
    rows = result.counts.get("images", result.counts.get("captions", 0))
    table = [
        {
            "rows": rows,
            "shards": result.counts["shards"],
            "bytes": result.counts["bytes"],
            "hits": reused,
            "misses": encoded,
            "hit rate": f"{reused / rows:.0%}" if rows else "-",
        }
    ]
    if shards_written is not None:
        table[0]["shards written"] = shards_written
    create_table_artifact(
        key=artifact_key(prefix, name),
        table=table,
        description=f"Cache statistics of `{name}` at {cache_uri}",
    )
