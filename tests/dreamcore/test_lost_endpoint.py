"""moto's S3 server stopped in the middle of the cache stage (between shards) and of a checkpoint (between
its files), then started again: the stage fails with one line naming the endpoint and what to do, nothing is
committed, and the rerun resumes (the shards written before the loss are reused, training restarts from the
last complete checkpoint)."""

from __future__ import annotations

import logging
import re
import time
import uuid

import pytest

from dreamcore.cli import main
from dreamcore.config import load_run_config
from dreamcore.pipeline.local import run_stage_locally
from dreamcore.storage import ArtifactStore
from tests.conftest import free_port
from tests.dreamcore.reliability import files_under, short_demo

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]


class _Endpoint:
    """A moto S3 server of its own that the test can stop and start again on the same port (moto keeps its
    buckets in this process, so they come back with it)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = None

    def start(self) -> None:
        from moto.server import ThreadedMotoServer

        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.server.start()

    def stop(self) -> None:
        self.server.stop()


@pytest.fixture
def endpoint(monkeypatch):
    import logging

    import s3fs

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    served = _Endpoint()
    served.start()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "dreamcore-test-key-id")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "dreamcore-test-secret-value")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", served.url)
    monkeypatch.setenv("DREAMCORE_LEASE_TTL_S", "3")  # the lease the failed run could not release lapses soon
    s3fs.S3FileSystem.clear_instance_cache()  # clients of another endpoint must not be reused
    served.root = f"s3://lost-endpoint-{uuid.uuid4().hex[:8]}/artifacts"  # moto keeps buckets between tests
    s3fs.S3FileSystem(skip_instance_cache=True).mkdir(served.root[5:].split("/")[0])
    yield served
    served.stop()
    s3fs.S3FileSystem.clear_instance_cache()


def _run_losing_the_endpoint(path, stage: str, failing: str, endpoint: _Endpoint, capsys) -> tuple[list[str], float]:
    """`dreamcore run --stage <stage>` while the endpoint goes away: exit 2 and one error line naming the
    endpoint and the `failing` stage; the endpoint is started again. Returns the lines and the seconds."""
    capsys.readouterr()
    started = time.monotonic()
    assert main(["run", str(path), "--stage", stage]) == 2
    failed_after = time.monotonic() - started
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    endpoint.start()
    assert len(lines) == 1 and endpoint.url in lines[0] and "nothing was committed" in lines[0], lines
    assert lines[0].startswith(f"error: {failing} stage: lost the storage endpoint ")
    return lines, failed_after


def _lose_the_endpoint_after_two_shards(endpoint: _Endpoint, monkeypatch) -> tuple[list[str], object]:
    """Stop the endpoint once two cache shards are written; returns the shards written and the real writer."""
    from dreamcore.cache.shards import ShardedCache

    written: list[str] = []
    write_shard = ShardedCache.write_shard

    def write_then_lose_the_endpoint(self, rows, schema):
        shard = write_shard(self, rows, schema)
        written.append(shard[0])
        if len(written) == 2:
            endpoint.stop()
        return shard

    monkeypatch.setattr(ShardedCache, "write_shard", write_then_lose_the_endpoint)
    return written, write_shard


def test_the_endpoint_lost_between_cache_shards(tmp_path, endpoint, monkeypatch, capsys) -> None:
    from dreamcore.cache.shards import ShardedCache

    root = endpoint.root
    path = short_demo(tmp_path / "demo", root, cache_shard_size=1)
    config = load_run_config(path)
    store = ArtifactStore(root)
    run_stage_locally(config, "ingest")
    written, write_shard = _lose_the_endpoint_after_two_shards(endpoint, monkeypatch)
    lines, failed_after = _run_losing_the_endpoint(path, "cache", "vae_cache", endpoint, capsys)
    files = files_under(store)
    assert not [p for p in files if p.endswith("_SUCCESS.json") and p.startswith(("vae_cache/", "text_cache/"))]
    shards = {p for p in files if "/shards/" in p}
    assert len(shards) == 2
    monkeypatch.setattr(ShardedCache, "write_shard", write_shard)
    rerun = run_stage_locally(config, "cache")
    reused = sum(r["reused"] for r in rerun["vae_cache"].values())
    encoded = sum(r["encoded"] for r in rerun["vae_cache"].values())
    assert reused == 2 and encoded > 0  # the two shards written before the loss were not encoded again
    assert shards <= {p for p in files_under(store) if "/shards/" in p}
    print(f"\n[cache] endpoint lost after 2 shards: failed in {failed_after:.1f} s with {lines[0]!r}; "
          f"rerun reused {reused} rows, encoded {encoded}")


def test_the_endpoint_lost_in_the_middle_of_a_checkpoint(tmp_path, endpoint, monkeypatch, capsys, caplog) -> None:
    from dreamcore.train import checkpoints

    root = endpoint.root
    path = short_demo(tmp_path / "demo", root)
    config = load_run_config(path)
    store = ArtifactStore(root)
    run_stage_locally(config, "ingest")
    run_stage_locally(config, "cache")
    serialised = []
    torch_bytes = checkpoints._torch_bytes

    def lose_the_endpoint_in_the_second_checkpoint(value):
        serialised.append(1)
        if len(serialised) == 3:  # step 4: trainable.safetensors is written, optimizer.pt is next
            endpoint.stop()
        return torch_bytes(value)

    monkeypatch.setattr(checkpoints, "_torch_bytes", lose_the_endpoint_in_the_second_checkpoint)
    lines, failed_after = _run_losing_the_endpoint(path, "train", "train", endpoint, capsys)
    files = files_under(store)
    key = next(p.split("/")[1] for p in files if p.startswith("train/"))
    assert not [p for p in files if p.startswith("train/") and p.endswith("_SUCCESS.json")]
    half = sorted(p.rsplit("/", 1)[-1] for p in files if "checkpoints/step-00000004/" in p)
    assert half == ["trainable.safetensors"]  # half a checkpoint, without its _COMPLETE.json: never resumed from
    monkeypatch.setattr(checkpoints, "_torch_bytes", torch_bytes)
    capsys.readouterr()
    started = time.monotonic()
    with caplog.at_level(logging.INFO, logger="dreamcore.train.trainer"):
        assert main(["run", str(path), "--stage", "train"]) == 0
    rerun_took = time.monotonic() - started
    assert re.search(r"resumed from the checkpoint of step 2\b", caplog.text), caplog.text[-2000:]
    marker = store.read_json(f"train/{key}/_SUCCESS.json")
    assert marker["counts"]["steps"] == 4
    print(f"\n[checkpoint] endpoint lost inside the step-4 checkpoint: failed in {failed_after:.1f} s with "
          f"{lines[0]!r}; rerun resumed from step 2 and committed in {rerun_took:.1f} s")


def test_the_task_retry_resumes_once_the_endpoint_is_back(tmp_path, endpoint, monkeypatch, prefect_harness,
                                                          tiny_models) -> None:
    """Under Prefect nobody reruns: the vae_cache task fails with StorageUnreachable, the endpoint comes back,
    and the task's own retry resumes from the shards written before the loss."""
    from prefect import flow

    from dreamcore.cache.stages import VaeCachePlan
    from dreamcore.cache.vae import VaeCacheJob, VaeCacheSettings, vae_cache_key
    from dreamcore.config import DatasetSpec
    from dreamcore.data.demo import write_demo_dataset
    from dreamcore.data.ingest import ingest_dataset, scan_dataset
    from dreamcore.storage import leases
    from tasks.cache import vae_cache
    from tasks.results import result_storage_for

    demo = write_demo_dataset(tmp_path / "demo", n_images=4, include_masks=False)
    store = ArtifactStore(endpoint.root)
    spec = DatasetSpec(id="subject", instance_data_dir=str(demo.images_dir), caption_strategy="textfile",
                       resolution=64)
    job = VaeCacheJob(spec, ingest_dataset(store, scan_dataset(spec)).result, str(tiny_models["sd"]),
                      endpoint.root, VaeCacheSettings(shard_size=1))
    written, _ = _lose_the_endpoint_after_two_shards(endpoint, monkeypatch)
    faults = []
    unreachable_fault = leases.unreachable_fault

    def the_endpoint_comes_back_after_the_failure(*args):
        fault = unreachable_fault(*args)
        if fault is not None:
            faults.append(str(fault))
            endpoint.start()  # before the task's retry, 5 s later
        return fault

    monkeypatch.setattr(leases, "unreachable_fault", the_endpoint_comes_back_after_the_failure)

    @flow
    def cache_once():
        return vae_cache.with_options(result_storage=result_storage_for(str(tmp_path / "results")))(
            VaeCachePlan(job=job, key=vae_cache_key(job)), return_state=True)

    started = time.monotonic()
    state = cache_once()
    took = time.monotonic() - started
    assert state.name == "Completed", state
    assert len(faults) == 1 and endpoint.url in faults[0]
    assert len(written) == len(set(written)) == state.result().counts["shards"] == 4  # 2 before, 2 after: none twice
    print(f"\n[prefect] vae_cache task: lost the endpoint after 2 of 4 shards, retried by Prefect, resumed with the "
          f"2 missing shards; Completed in {took:.1f} s")
