"""The gc flow under the Prefect test harness: after a caption edit, the cached task results that name the
collected stages go with them, so rerunning the flows recomputes nothing and hands over no missing folder."""

from __future__ import annotations

import pytest

from dreamcore.config import load_run_config
from dreamcore.demo import write_demo_project
from dreamcore.storage import ArtifactStore
from flows.cache import cache_flow
from flows.gc import gc
from flows.ingest import ingest_flow

pytestmark = pytest.mark.usefixtures("prefect_harness", "one_torch_thread")


def test_gc_flow_collects_old_stages_and_their_prefect_results(tmp_path):
    config_path = write_demo_project(tmp_path / "demo")
    config = load_run_config(config_path)
    store = ArtifactStore(config.training.resolved_storage_root)
    old = cache_flow(config, ingest_flow(config))
    caption = sorted((config_path.parent / "data" / "instance_images").glob("*.txt"))[0]
    caption.write_text("a photo of sks toy, edited\n")
    ingested = ingest_flow(config)
    new = cache_flow(config, ingested)
    assert new["text_cache"].key != old["text_cache"].key

    dry = gc(config=config, grace_minutes=0)
    orphans = {o["path"]: o["kind"] for o in dry["plan"]["orphans"]}
    assert f"text_cache/{old['text_cache'].key}" in orphans and not dry["freed_bytes"]
    assert "prefect-result" in orphans.values()
    assert all(store.exists(path) for path in orphans)

    done = gc(config=config, grace_minutes=0, apply=True)
    assert done["freed_bytes"] == dry["plan"]["orphan_bytes"] > 0
    assert not any(store.exists(path) for path in orphans)
    assert cache_flow(config, ingest_flow(config)) == new  # the current stages and their cached results stay
    assert gc(config=config, grace_minutes=0)["plan"]["orphans"] == []
    with pytest.raises(ValueError, match="either config"):
        gc(config=config, storage_root=store.uri())
