"""gc on a local and an S3 (moto server) root: after caption edits it removes exactly the stage folders
and shards no run record or current config needs, keeps a fresh in-progress stage, and the current
run still finds everything it committed."""

from __future__ import annotations

import json
import time

import pytest

from dreamcore.cache.text import read_caption_index
from dreamcore.cache.vae import read_index
from dreamcore.cli import main
from dreamcore.config import load_run_config
from dreamcore.demo import write_demo_project
from dreamcore.gc import apply_plan, plan_gc
from dreamcore.pipeline.local import run_stage_locally
from dreamcore.retrain import record_run
from dreamcore.storage import ArtifactStore, StageResult

pytestmark = pytest.mark.usefixtures("one_torch_thread")
IN_PROGRESS = "train/0123456789abcdef0123/checkpoints/step-00000002/progress.json"
ABANDONED = "train/fedcba9876543210fedc/checkpoints/step-00000002/progress.json"


def _ingest_and_cache(config) -> dict:
    return {"ingest": run_stage_locally(config, "ingest"), "cache": run_stage_locally(config, "cache")}


def _stage_folders(results: dict) -> set[str]:
    found = set()

    def walk(value):
        if isinstance(value, dict) and {"stage", "key", "output_uri"} <= value.keys():
            found.add(f"{value['stage']}/{value['key']}")
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
    walk(results)
    return found


def _shards_needed(store: ArtifactStore, results: dict) -> set[str]:
    """Shards (relative to the root) the cache indexes of `results` read, through the cache readers."""
    root = store.uri()
    needed = set()
    caches = [StageResult.model_validate(r) for r in results["cache"]["vae_cache"].values()]
    for result in caches:
        needed |= {f"{result.details['cache_uri']}/{row['shard']}" for row in read_index(store, result)}
    text = StageResult.model_validate(results["cache"]["text_cache"])
    needed |= {f"{text.details['cache_uri']}/{row['shard']}" for row in read_caption_index(store, text)}
    return {uri.removeprefix(root + "/").removeprefix(store.root_path + "/") for uri in needed}


def _all_shards(store: ArtifactStore) -> set[str]:
    prefix = len(store.root_path) + 1
    store.invalidate()
    return {p[prefix:] for p in store.fs.find(store.root_path) if "/shards/" in p}


def test_gc_removes_exactly_the_orphans_of_caption_edits(tmp_path, storage_root):
    config_path = write_demo_project(tmp_path / "demo")
    raw = json.loads(config_path.read_text()) | {"--storage_root": storage_root}
    config_path.write_text(json.dumps(raw))
    config = load_run_config(config_path)
    store = ArtifactStore(storage_root)
    first = _ingest_and_cache(config)
    record_run(store, "weekly", first)

    captions = sorted((config_path.parent / "data" / "instance_images").glob("*.txt"))
    for caption in captions[:2]:
        caption.write_text(caption.read_text().strip() + ", edited\n")
    second = _ingest_and_cache(config)
    record_run(store, "weekly", second)  # the current run: the first one's record is replaced
    store.write_bytes(ABANDONED, b"{}")  # a stage that died before committing
    time.sleep(3)
    store.write_bytes(IN_PROGRESS, b"{}")  # a stage being written right now

    expected_stages = (_stage_folders(first) - _stage_folders(second)) | {ABANDONED.rsplit("/", 3)[0]}
    expected_shards = _all_shards(store) - _shards_needed(store, second)
    assert any(f.startswith("text_cache/") for f in expected_stages)  # the edit orphaned something

    plan = plan_gc(store, grace_minutes=1.5 / 60)
    assert {o.path for o in plan.orphans if o.kind == "stage"} == expected_stages
    assert {o.path for o in plan.orphans if o.kind == "shard"} == expected_shards
    assert plan.kept_fresh == [IN_PROGRESS.rsplit("/", 3)[0]]
    assert plan.orphan_bytes > 0 and plan.kept_bytes + plan.orphan_bytes == plan.total_bytes

    assert main(["gc", storage_root, "--grace-minutes", str(1.5 / 60)]) == 0  # a dry run deletes nothing
    assert all(store.exists(o.path) for o in plan.orphans)
    assert apply_plan(store, plan) == plan.orphan_bytes
    assert not any(store.exists(o.path) for o in plan.orphans)
    assert store.exists(IN_PROGRESS)
    for folder in _stage_folders(second):
        assert store.exists(f"{folder}/_SUCCESS.json")
    assert _shards_needed(store, second) <= _all_shards(store)
    before = _all_shards(store)
    assert _stage_folders(_ingest_and_cache(config)) == _stage_folders(second)
    assert _all_shards(store) == before  # nothing had to be encoded again
    again = plan_gc(store, grace_minutes=1.5 / 60)  # only the in-progress stage may have aged past the grace
    assert {o.path for o in again.orphans} <= {IN_PROGRESS.rsplit("/", 3)[0]}


def test_gc_with_a_config_keeps_its_current_stages_without_a_run_record(tmp_path, capsys):
    config_path = write_demo_project(tmp_path / "demo")
    config = load_run_config(config_path)
    store = ArtifactStore(config.training.resolved_storage_root)
    first = _ingest_and_cache(config)
    caption = sorted((config_path.parent / "data" / "instance_images").glob("*.txt"))[0]
    caption.write_text("a photo of sks toy, edited\n")
    second = _ingest_and_cache(config)

    assert main(["gc", str(config_path), "--grace-minutes", "0", "--apply"]) == 0
    out = capsys.readouterr().out
    assert "freed" in out and "would free" not in out
    for folder in _stage_folders(second):
        assert store.exists(f"{folder}/_SUCCESS.json")
    for folder in _stage_folders(first) - _stage_folders(second):
        assert not store.exists(folder)


def test_a_stage_a_live_run_holds_a_lease_on_is_kept_past_the_grace_period(tmp_path):
    """A stage that writes slowly may leave its files untouched for longer than the grace period: its live
    lease (storage.leases, taken by the run computing it) keeps it; a dead owner's expired lease does not."""
    from dreamcore.storage.leases import lease_folder

    store = ArtifactStore(str(tmp_path / "artifacts"))
    held, dead = IN_PROGRESS.split("/")[1], ABANDONED.split("/")[1]
    store.write_bytes(IN_PROGRESS, b"{}")
    store.write_bytes(ABANDONED, b"{}")
    store.write_json(f"{lease_folder('train', held)}/1.json", {"owner": "live", "expires_at": time.time() + 600})
    store.write_json(f"{lease_folder('train', dead)}/1.json", {"owner": "dead", "expires_at": time.time() - 1})

    plan = plan_gc(store, grace_minutes=1.0, now=time.time() + 120)  # both folders are older than the grace
    assert plan.kept_fresh == [f"train/{held}"]
    assert [o.path for o in plan.orphans if o.kind == "stage"] == [f"train/{dead}"]


def test_gc_keeps_the_shards_of_a_text_embeds_dataset_a_dataset_names(tmp_path):
    """A dataset's text_embeds naming a second text_embeds dataset (no cache_dir: under the root) puts its captions
    in that dataset's own location; gc keeps those shards while the run needs them."""
    config_path = write_demo_project(tmp_path / "demo")
    backend = config_path.parent / "multidatabackend.json"
    datasets = json.loads(backend.read_text())
    next(d for d in datasets if d["id"] == "subject")["text_embeds"] = "subject-embeds"
    backend.write_text(json.dumps([*datasets, {"id": "subject-embeds", "type": "local", "dataset_type": "text_embeds"}]))
    config = load_run_config(config_path)
    store = ArtifactStore(config.training.resolved_storage_root)
    results = _ingest_and_cache(config)
    record_run(store, "weekly", results)
    text = StageResult.model_validate(results["cache"]["text_cache"])
    routed = text.details["text_embeds"]["subject-embeds"]
    assert routed["cache_uri"].endswith("/text_embeds-subject-embeds")
    routed_shards = {p for p in _all_shards(store) if p.startswith("text_embeds-subject-embeds/")}
    assert routed_shards

    plan = plan_gc(store, grace_minutes=0)
    assert not routed_shards & {o.path for o in plan.orphans}
