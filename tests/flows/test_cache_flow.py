"""The cache flow on the demo project: ingest results in, caches out, Cached on the second run, batches ready."""

from __future__ import annotations

import pytest

from dreamcore.cache.batches import open_batch_source
from dreamcore.config import load_run_config
from dreamcore.data.ingest import read_manifest
from dreamcore.demo import write_demo_project
from dreamcore.storage import ArtifactStore
from flows.cache import cache_flow
from flows.ingest import ingest_flow

pytestmark = pytest.mark.usefixtures("prefect_harness")


def test_cache_flow_caches_every_image_dataset_and_the_captions(tmp_path) -> None:
    config = load_run_config(write_demo_project(tmp_path / "demo"))
    ingested = ingest_flow(config)
    first = cache_flow(config, ingested, return_state=True)
    assert first.is_completed()
    results = first.result()
    assert set(results["vae_cache"]) == {"subject", "regularisation"}  # masks ride in the subject's rows
    assert results["vae_cache"]["subject"].counts["masked"] == 8
    store = ArtifactStore(config.training.resolved_storage_root)
    captions = {
        c for d in ("subject", "regularisation") for r in read_manifest(store, ingested[d]) for c in r["captions"]
    }
    assert results["text_cache"].counts["captions"] == len(captions) >= 2

    second = cache_flow(config, ingested, return_state=True)
    assert second.result() == results

    batch = open_batch_source(store, config, results["vae_cache"], results["text_cache"]).next_batch()
    assert batch.latents.shape[1:] == (4, 32, 32) and batch.prompt_embeds.shape[1:] == (77, 32)
