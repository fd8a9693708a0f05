"""The artifact store and the stage contract, on a local root and on S3 (moto's server)."""

from __future__ import annotations

import pytest

from dreamcore.storage import (
    SUCCESS_MARKER,
    ArtifactStore,
    StageResult,
    committed_result,
    run_stage,
    stage_key,
)


def test_write_read_list_remove(storage_root: str) -> None:
    store = ArtifactStore(storage_root)
    uri = store.write_bytes("stage/key/data.bin", b"\x00\x01")
    assert uri == f"{storage_root}/stage/key/data.bin"
    assert store.read_bytes("stage/key/data.bin") == b"\x00\x01"
    store.write_json("stage/key/info.json", {"b": 1, "a": [1, 2]})
    assert store.read_json("stage/key/info.json") == {"a": [1, 2], "b": 1}
    assert store.list("stage/key") == ["stage/key/data.bin", "stage/key/info.json"]
    store.remove("stage/key")
    assert store.list("stage/key") == []
    assert not store.exists("stage/key/data.bin")


def test_local_writes_leave_no_temporary_files(tmp_path) -> None:
    store = ArtifactStore(str(tmp_path / "root"))
    store.write_bytes("a/file.txt", b"one")
    store.write_bytes("a/file.txt", b"two")
    assert store.read_bytes("a/file.txt") == b"two"
    assert sorted(p.name for p in (tmp_path / "root" / "a").iterdir()) == ["file.txt"]


def test_stage_key_depends_on_inputs_not_on_order() -> None:
    base = stage_key("ingest", 1, {"a": 1, "b": [1, 2]}, {"up": "d1"}, "model-x")
    assert base == stage_key("ingest", 1, {"b": [1, 2], "a": 1}, {"up": "d1"}, "model-x")
    assert base != stage_key("ingest", 2, {"a": 1, "b": [1, 2]}, {"up": "d1"}, "model-x")
    assert base != stage_key("ingest", 1, {"a": 2, "b": [1, 2]}, {"up": "d1"}, "model-x")
    assert base != stage_key("ingest", 1, {"a": 1, "b": [1, 2]}, {"up": "d2"}, "model-x")
    assert base != stage_key("ingest", 1, {"a": 1, "b": [1, 2]}, {"up": "d1"}, "model-y")
    assert base != stage_key("cache", 1, {"a": 1, "b": [1, 2]}, {"up": "d1"}, "model-x")


def _result(store: ArtifactStore, folder: str, key: str) -> StageResult:
    return StageResult(stage="demo", key=key, output_uri=store.uri(folder), digest="d", counts={"n": 1})


def test_run_stage_commits_marker_last_and_skips_when_committed(storage_root: str) -> None:
    store = ArtifactStore(storage_root)
    calls = []

    def build(folder: str) -> StageResult:
        calls.append(folder)
        assert committed_result(store, "demo", "k1") is None  # nothing trusted while building
        store.write_bytes(f"{folder}/out.txt", b"x")
        return _result(store, folder, "k1")

    first, did_work = run_stage(store, "demo", "k1", build)
    assert did_work and calls == ["demo/k1"]
    assert store.exists(f"demo/k1/{SUCCESS_MARKER}")
    second, did_work = run_stage(store, "demo", "k1", build)
    assert not did_work and calls == ["demo/k1"]
    assert second == first


def test_failed_build_leaves_nothing_trusted(storage_root: str) -> None:
    store = ArtifactStore(storage_root)

    def crash(folder: str) -> StageResult:
        store.write_bytes(f"{folder}/half.txt", b"partial")
        raise RuntimeError("injected crash")

    with pytest.raises(RuntimeError, match="injected crash"):
        run_stage(store, "demo", "k2", crash)
    assert committed_result(store, "demo", "k2") is None

    def build(folder: str) -> StageResult:
        store.write_bytes(f"{folder}/half.txt", b"complete")
        return _result(store, folder, "k2")

    _, did_work = run_stage(store, "demo", "k2", build)
    assert did_work
    assert store.read_bytes("demo/k2/half.txt") == b"complete"


def test_build_must_return_its_own_key(tmp_path) -> None:
    store = ArtifactStore(str(tmp_path))
    with pytest.raises(ValueError, match="built a result for demo/other"):
        run_stage(store, "demo", "k3", lambda folder: _result(store, folder, "other"))
    assert committed_result(store, "demo", "k3") is None
