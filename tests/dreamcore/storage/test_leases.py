"""Stage leases: a second run waits for the holder's commit and reuses it; a dead owner's lease is
taken over past its expiry; creating a lease is exclusive on local disk and on S3 (moto)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dreamcore.storage import ArtifactStore, StageResult, run_stage
from dreamcore.storage.leases import create_exclusively, lease_folder, newest_lease

HOLDER = Path(__file__).with_name("hold_lease.py")
REPO = Path(__file__).resolve().parents[3]


def result(store: ArtifactStore, folder: str, digest: str) -> StageResult:
    stage, key = folder.split("/")
    return StageResult(stage=stage, key=key, output_uri=store.uri(folder), digest=digest)


def test_a_second_process_waits_for_the_holders_commit_and_reuses_it(tmp_path, caplog) -> None:
    root, ready = str(tmp_path / "artifacts"), tmp_path / "ready"
    holder = subprocess.Popen([sys.executable, str(HOLDER), root, "demo", "k1", "5", str(ready)],
                              env=os.environ | {"PYTHONPATH": str(REPO)})
    deadline = time.monotonic() + 60
    while not ready.exists() and time.monotonic() < deadline and holder.poll() is None:
        time.sleep(0.1)
    assert ready.exists(), "the holder never took the lease"
    store = ArtifactStore(root)
    built = []
    started = time.monotonic()
    with caplog.at_level(logging.INFO, logger="dreamcore.storage.leases"):
        done, worked = run_stage(store, "demo", "k1", lambda folder: built.append(folder) or result(store, folder, "me"))
    assert holder.wait(30) == 0
    assert not worked and not built and done.digest == "holder"
    assert time.monotonic() - started > 2.0  # it waited past two lease ttls: the holder's renewals kept it
    assert "is being computed by" in caplog.text and "reusing it" in caplog.text
    assert store.read_bytes("demo/k1/out.txt") == b"computed by the holder"
    assert store.list(lease_folder("demo", "k1")) == []  # released


def test_a_dead_owners_lease_is_taken_over_after_its_expiry(tmp_path, caplog) -> None:
    store = ArtifactStore(str(tmp_path / "artifacts"))
    dead = {"owner": "gone-host:4242:deadbeef", "ttl_s": 60}
    store.write_bytes(f"{lease_folder('demo', 'k2')}/0.json", json.dumps(dead).encode())
    last_renewal = time.time() - 61  # expiry is the lease file's modification time + ttl
    os.utime(store.path(f"{lease_folder('demo', 'k2')}/0.json"), (last_renewal, last_renewal))
    store.write_bytes("demo/k2/partial.bin", b"left by the dead owner")
    seen = []

    def build(folder: str) -> StageResult:
        seen.append(store.read_bytes(f"{folder}/partial.bin"))  # resumes from the leftovers
        holder = newest_lease(store, "demo", "k2")
        seen.append((holder.generation, holder.owner != dead["owner"]))
        return result(store, folder, "taken over")

    with caplog.at_level(logging.WARNING, logger="dreamcore.storage.leases"):
        done, worked = run_stage(store, "demo", "k2", build)
    assert worked and done.digest == "taken over"
    assert seen == [b"left by the dead owner", (1, True)]
    assert "gone-host:4242:deadbeef expired" in caplog.text


@pytest.mark.parametrize("kind", ["local", "s3"])
def test_creating_a_lease_is_exclusive(kind, tmp_path, request) -> None:
    root = str(tmp_path / "artifacts") if kind == "local" else request.getfixturevalue("s3_root")
    store = ArtifactStore(root)
    assert create_exclusively(store, "_leases/s/k/0.json", b'{"owner": "a"}')
    assert not create_exclusively(store, "_leases/s/k/0.json", b'{"owner": "b"}')
    assert store.read_json("_leases/s/k/0.json") == {"owner": "a"}
