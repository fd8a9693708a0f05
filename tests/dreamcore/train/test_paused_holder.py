"""A training paused (SIGSTOP) past its lease's expiry loses the lease: a second run takes over, resumes from
the paused run's checkpoint and commits; the first, continued (SIGCONT), stops with one line and writes
nothing: every file of the committed folder is the second run's, byte for byte, and its export loads."""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from dreamcore.config import load_run_config
from dreamcore.pipeline.local import run_stage_locally
from dreamcore.storage import ArtifactStore, StageResult
from dreamcore.storage.leases import lease_folder
from tests.dreamcore.reliability import export_loads, files_under, short_demo, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]
TTL = 4.0  # S3 times are whole seconds, and renewals on a loaded 2-core machine may run late
STEPS = 24


def _contents(store: ArtifactStore, prefix: str) -> dict[str, str]:
    return {path: hashlib.sha256(store.read_bytes(path)).hexdigest()[:16]
            for path in files_under(store) if path.startswith(prefix)}


def _checkpoint_written(store: ArtifactStore, step: int) -> str | None:
    found = [p for p in files_under(store) if p.startswith("train/")
             and p.endswith(f"checkpoints/step-{step:08d}/_COMPLETE.json")]
    return found[0].split("/")[1] if found else None


def _lease_taken(store: ArtifactStore) -> bool:
    return any(p.startswith("_leases/train/") and p.endswith("/0.json") for p in files_under(store, ignore=()))


def test_a_paused_holder_loses_its_lease_and_writes_nothing(tmp_path, storage_root) -> None:
    path = short_demo(tmp_path / "demo", storage_root, max_train_steps=STEPS, checkpointing_steps=2)
    config = load_run_config(path)
    store = ArtifactStore(storage_root)
    run_stage_locally(config, "ingest")
    run_stage_locally(config, "cache")
    env = os.environ | {"HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "DREAMCORE_LEASE_TTL_S": str(TTL)}
    command = [sys.executable, "-m", "dreamcore.cli", "run", str(path), "--stage", "train"]
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    second = None
    try:
        assert wait_for(lambda: _lease_taken(store) or first.poll() is not None, 300)
        # the second run starts now and waits on the first one's lease
        second = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        assert wait_for(lambda: _checkpoint_written(store, 2) or first.poll() is not None, 300)
        first.send_signal(signal.SIGSTOP)
        stopped_at = time.monotonic()
        key = _checkpoint_written(store, 2)
        assert key and first.poll() is None, f"the first run ended before its pause: {first.communicate()[1][-3000:]}"
        before = _contents(store, f"train/{key}/checkpoints/")  # what the first run wrote before its pause
        assert wait_for(lambda: any(p.endswith("/1.json") for p in store.list(lease_folder("train", key))), 60, 0.05)
        took_over = time.monotonic() - stopped_at
        out, err = second.communicate(timeout=600)
        assert second.returncode == 0, err[-3000:]
        committed = StageResult.model_validate(store.read_json(f"train/{key}/_SUCCESS.json"))
        marker = store.read_json(f"train/{key}/_SUCCESS.json")
        assert f":{second.pid}:" in marker["committed_by"]
        resumed = re.search(r"resumed from the checkpoint of step (\d+)", err)
        assert resumed and int(resumed.group(1)) >= 2, err[-3000:]  # the takeover resumed, not restarted
        expired = re.search(r"expired ([\d.]+) s ago by the store's clock", err)
        assert expired, err[-3000:]
        written_by_second = _contents(store, f"train/{key}/")

        first.send_signal(signal.SIGCONT)
        first_out, first_err = first.communicate(timeout=300)
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGCONT)
                process.kill()
    lines = [line for line in first_err.strip().splitlines() if line.startswith("error:")]
    expected = f"error: lost the lease on train/{key} to {marker['committed_by']}; stopping without writing"
    assert first.returncode == 2 and lines == [expected], first_err[-3000:]
    assert _contents(store, f"train/{key}/") == written_by_second  # not a byte added, removed or changed
    assert committed.counts["steps"] == STEPS
    assert export_loads(store, committed, config) == ["dreamcore_eval"]
    kept_from_first = sorted(set(before) & set(written_by_second))
    print(f"\n[{'s3' if storage_root.startswith('s3://') else 'local'}] ttl {TTL:g} s: second run took over "
          f"{took_over:.2f} s after the SIGSTOP ({expired.group(1)} s after the store-clock expiry), resumed from "
          f"step {resumed.group(1)}, committed {len(written_by_second)} files; the first run wrote "
          f"{len(before)} checkpoint files before its pause ({len(kept_from_first)} still there, unchanged) and "
          f"nothing after SIGCONT: {lines[0]}")
