"""`dreamcore gc <storage root> --apply` in the middle of a training (local disk and moto S3; grace 0 and
120 minutes with every cache file three hours old) keeps everything the training reads: the ingest
manifests, the cache indexes and their shards. The training finishes and its export loads; a real orphan
is collected meanwhile, and gc after the training collects the inputs it skipped."""

from __future__ import annotations

import pytest

from dreamcore.cli import main
from dreamcore.config import load_run_config
from dreamcore.pipeline.local import run_stage_locally
from dreamcore.pipeline.training import train_on_caches
from dreamcore.train.plan import CacheResults, plan_training_on_caches
from dreamcore.storage import ArtifactStore
from tests.dreamcore.reliability import age_files, export_loads, files_under, short_demo

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]
ABANDONED = "train/fedcba9876543210fedc/checkpoints/step-00000002/progress.json"


@pytest.mark.parametrize("grace", [0, 120])
def test_gc_of_the_root_during_a_training_keeps_what_it_reads(tmp_path, storage_root, grace, capsys) -> None:
    config = load_run_config(short_demo(tmp_path / "demo", storage_root))
    store = ArtifactStore(storage_root)
    run_stage_locally(config, "ingest")
    caches = run_stage_locally(config, "cache")
    store.write_bytes(ABANDONED, b"{}")  # a training that died long ago: a real orphan
    aged = age_files(store, hours=3)
    inputs = set(files_under(store)) - {ABANDONED}
    assert any("/shards/" in p for p in inputs) and any(p.startswith("ingest/") for p in inputs)
    plan = plan_training_on_caches(config, CacheResults.model_validate(caches))
    during: dict = {}

    def gc_at_step_one(entry: dict) -> None:
        if entry["step"] == 1:
            capsys.readouterr()
            during["code"] = main(["gc", storage_root, "--apply", "--grace-minutes", str(grace)])
            during["out"] = capsys.readouterr().out
            during["files"] = set(files_under(store))

    result = train_on_caches(plan, store, on_step=gc_at_step_one, show_progress=False)
    assert during["code"] == 0, during
    assert inputs <= during["files"], sorted(inputs - during["files"])  # nothing the training reads was deleted
    assert ABANDONED not in during["files"]  # real orphans still go
    assert "kept (read)" in during["out"]
    assert result.counts["steps"] == 4 and store.exists(f"train/{result.key}/_SUCCESS.json")
    assert export_loads(store, result, config) == ["dreamcore_eval"]

    assert main(["gc", storage_root, "--apply", "--grace-minutes", str(grace)]) == 0  # afterwards: no lease, no record
    after = capsys.readouterr().out
    left = set(files_under(store))
    assert not inputs & left, sorted(inputs & left)  # the inputs it skipped are orphans now, and collected
    train_files = {p for p in during["files"] | left if p.startswith(f"train/{result.key}/")}
    assert (train_files <= left) == (grace > 0)  # within the grace period the fresh training itself is kept
    print(f"\n[{'s3' if storage_root.startswith('s3://') else 'local'}, grace {grace} min] {aged} files aged 3 h; "
          f"gc during training kept {len(inputs)}/{len(inputs)} input files, collected the abandoned folder: "
          f"{during['out'].strip().splitlines()[-1]}; gc afterwards: {after.strip().splitlines()[-1]}")
