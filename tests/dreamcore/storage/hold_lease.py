"""Run by test_leases in its own process: hold a stage's lease for some seconds, then commit a result."""

from __future__ import annotations

import sys
import time

from dreamcore.storage import ArtifactStore, StageResult, commit, committed_result
from dreamcore.storage.leases import stage_lease


def main(root: str, stage: str, key: str, seconds: str, ready_file: str) -> None:
    store = ArtifactStore(root)
    with stage_lease(store, stage, key, lambda: committed_result(store, stage, key) is not None, ttl=2.0) as computing:
        assert computing
        open(ready_file, "w").close()
        time.sleep(float(seconds))  # longer than the ttl: the renewal keeps the lease alive
        store.write_bytes(f"{stage}/{key}/out.txt", b"computed by the holder")
        commit(store, StageResult(stage=stage, key=key, output_uri=store.uri(f"{stage}/{key}"), digest="holder"))


if __name__ == "__main__":
    main(*sys.argv[1:])
