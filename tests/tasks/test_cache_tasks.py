"""The cache tasks: Prefect cache hits on unchanged inputs, bucket and statistics artifacts."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

from dreamcore.cache.stages import TextCachePlan, VaeCachePlan
from dreamcore.cache.text import TextCacheJob, text_cache_key
from dreamcore.cache.vae import VaeCacheJob, VaeCacheSettings, vae_cache_key
from dreamcore.config import DatasetSpec
from dreamcore.data.demo import write_demo_dataset
from dreamcore.data.ingest import ingest_dataset, scan_dataset
from dreamcore.storage import ArtifactStore
from tasks.cache import text_cache, vae_cache
from tasks.results import result_storage_for

pytestmark = pytest.mark.usefixtures("prefect_harness")


async def latest_artifact(key: str) -> list[dict]:
    """The rows of the newest table artifact with this key."""
    async with get_client() as client:
        found = await client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))
    data = max(found, key=lambda a: a.created).data
    return json.loads(data) if isinstance(data, str) else data


def run_both(vae_job: VaeCacheJob, text_job: TextCacheJob, root: str):
    @flow
    def caches():
        storage = result_storage_for(root)
        vae_plan = VaeCachePlan(job=vae_job, key=vae_cache_key(vae_job))
        text_plan = TextCachePlan(job=text_job, key=text_cache_key(text_job))
        latents = vae_cache.with_options(result_storage=storage)(vae_plan, return_state=True)
        embeds = text_cache.with_options(result_storage=storage)(text_plan, root, return_state=True)
        return latents, embeds

    return caches()


def test_cache_tasks_are_cached_on_rerun_and_publish_buckets_and_statistics(tmp_path: Path, tiny_models) -> None:
    demo = write_demo_dataset(tmp_path / "demo", n_images=4, include_masks=False)
    root = str(tmp_path / "artifacts")
    store = ArtifactStore(root)
    spec = DatasetSpec(
        id="Subject Photos", instance_data_dir=str(demo.images_dir), caption_strategy="textfile", resolution=64
    )
    ingest = ingest_dataset(store, scan_dataset(spec)).result
    vae_job = VaeCacheJob(spec, ingest, str(tiny_models["sd"]), root, VaeCacheSettings(shard_size=2))
    text_job = TextCacheJob({spec.id: ingest}, str(tiny_models["sd"]), str(tmp_path / "text"))

    latents, embeds = run_both(vae_job, text_job, root)
    assert (latents.name, embeds.name) == ("Completed", "Completed")
    assert latents.result().counts["images"] == 4 and embeds.result().counts["captions"] == 4
    buckets = asyncio.run(latest_artifact("vae-cache-buckets-subject-photos"))
    assert sum(row["images"] for row in buckets) == 4
    stats = asyncio.run(latest_artifact("vae-cache-stats-subject-photos"))[0]
    assert (stats["rows"], stats["misses"], stats["hits"], stats["shards written"]) == (4, 4, 0, 2)
    assert stats["bytes"] == latents.result().counts["bytes"] > 0
    text_stats = asyncio.run(latest_artifact("text-cache-stats-captions"))[0]
    assert (text_stats["rows"], text_stats["misses"]) == (4, 4)

    again_latents, again_embeds = run_both(vae_job, text_job, root)
    assert (again_latents.name, again_embeds.name) == ("Cached", "Cached")
    assert again_latents.result() == latents.result() and again_embeds.result() == embeds.result()
