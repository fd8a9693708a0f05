"""Test-wide environment: offline, Prefect in a temporary home with analytics off."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

os.environ["HF_HUB_OFFLINE"] = "1"
if "PREFECT_HOME" not in os.environ:
    # The process that makes the home removes it (test subprocesses inherit it and leave it be).
    os.environ["PREFECT_HOME"] = tempfile.mkdtemp(prefix="dreamcore-prefect-home-")
    atexit.register(shutil.rmtree, os.environ["PREFECT_HOME"], ignore_errors=True)
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Tiny models are overhead-bound: one thread per process is faster than two fighting over 2 cores.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A real S3 HTTP endpoint (moto's server) on 127.0.0.1; credentials only in the environment."""
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL_S3")}
    os.environ.update(
        AWS_ACCESS_KEY_ID="dreamcore-test-key-id",
        AWS_SECRET_ACCESS_KEY="dreamcore-test-secret-value",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ENDPOINT_URL_S3=endpoint,
    )
    yield endpoint
    server.stop()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture
def s3_root(s3_endpoint: str) -> str:
    """A fresh, empty s3:// prefix in its own bucket."""
    import s3fs

    bucket = f"dreamcore-{uuid.uuid4().hex[:12]}"
    s3fs.S3FileSystem(skip_instance_cache=True).mkdir(bucket)
    return f"s3://{bucket}/artifacts"


@pytest.fixture(params=["local", "s3"])
def storage_root(request, tmp_path) -> str:
    """Run a test once on a local root and once on an s3:// root."""
    if request.param == "local":
        return str(tmp_path / "artifacts")
    return request.getfixturevalue("s3_root")


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """One temporary Prefect API (SQLite in a temp folder) for the tests that run tasks and flows."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """torch on `count` threads inside the block, as it was after it (for module-scoped fixtures)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """Tiny models run fastest on one torch thread; two threads on a shared 2-core machine thrash.
    Modules opt in with usefixtures, area conftests with an autouse fixture that asks for it."""
    with torch_threads(1):
        yield


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    """kind -> folder of every tiny model (sd, sdxl, sdxl-refiner, taesd, clip, clipseg), seed 0.

    Shared by the whole session: treat as read-only (copy a folder before changing it).
    """
    from dreamcore.models import write_tiny_models

    return write_tiny_models(tmp_path_factory.mktemp("tiny-models"))


@pytest.fixture
def cached_demo(tmp_path, request):
    """The demo project ingested and cached in-process: (config, vae results by dataset id, text result).

    Training settings are cut down for tests: 4 steps, a checkpoint every 2, 1 torch thread. The tiny SD 1.x
    unless a test asks for another family's demo (`@pytest.mark.parametrize("cached_demo", ["kolors"], indirect=True)`).
    """
    return cache_demo_project(tmp_path / "demo", getattr(request, "param", None))


def cache_demo_project(folder, family: str | None = None):
    """The demo project (on `family`'s tiny model; None: SD 1.x) written under `folder`, ingested and cached
    in-process, trained for 4 steps with a checkpoint every 2 on 1 torch thread: (config, vae results, text result)."""
    import torch

    from dreamcore.cache.stages import run_cache
    from dreamcore.config import load_run_config
    from dreamcore.demo import write_demo_project
    from dreamcore.pipeline import run_ingest
    from dreamcore.storage import ArtifactStore, StageResult

    torch.set_num_threads(1)
    config = load_run_config(write_demo_project(folder, family=family))
    training = config.training.model_copy(update={"max_train_steps": 4, "checkpointing_steps": 2})
    config = config.model_copy(update={"training": training})
    store = ArtifactStore(config.training.resolved_storage_root)
    run_ingest(config, store)
    caches = run_cache(config, store)
    vae = {dataset_id: StageResult.model_validate(r) for dataset_id, r in caches["vae_cache"].items()}
    return config, vae, StageResult.model_validate(caches["text_cache"])
