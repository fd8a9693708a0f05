"""Expected faults of `dreamcore run`, made real: a missing dataset folder, an S3 root without credentials
(moto on 127.0.0.1), a full filesystem (a 1 MiB tmpfs; without mount rights, a file-size limit of the
process) and a read-only storage root (a read-only tmpfs; without mount rights, a chmod'ed folder for
a non-root user). Each ends with exit status 2 and one line naming the path and what to do; nothing
is committed or half-written."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dreamcore.demo import write_demo_project
from tests.e2e.conftest import REPO

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    """A demo project (written once); tests write their own config variants beside it."""
    return write_demo_project(tmp_path_factory.mktemp("faults") / "demo")


def variant(demo: Path, tmp_path: Path, storage_root: str, **dataset_changes) -> Path:
    config = json.loads(demo.read_text())
    datasets = json.loads((demo.parent / "multidatabackend.json").read_text())
    datasets[0] |= dataset_changes
    (tmp_path / "datasets.json").write_text(json.dumps(datasets))
    config |= {"--storage_root": storage_root, "--output_dir": str(tmp_path / "output"),
               "--data_backend_config": str(tmp_path / "datasets.json")}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    return path


def dreamcore(*args: str, env: dict | None = None, preexec_fn=None, timeout: float = 600):
    environment = (env or os.environ.copy()) | {"HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "dreamcore.cli", *args], capture_output=True, text=True,
                          env=environment, preexec_fn=preexec_fn, timeout=timeout, cwd=REPO)


def one_error_line(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 2, done.stderr[-3000:]
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    lines = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, done.stderr[-3000:]
    return lines[0]


def mount_tmpfs(folder: Path, options: str) -> bool:
    """Mount a tmpfs at `folder` (root only); False when this machine does not allow it."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        return False
    return subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)],
                          capture_output=True).returncode == 0


def unmount(folder: Path) -> None:
    subprocess.run(["umount", str(folder)], capture_output=True)


def committed_or_partial(root: Path) -> list[str]:
    return [str(p) for p in root.rglob("*") if p.name == "_SUCCESS.json" or ".tmp-" in p.name]


@pytest.mark.parametrize("stage", ["ingest", None])
def test_a_missing_dataset_folder_is_one_line_and_creates_nothing(demo, tmp_path, stage) -> None:
    root = tmp_path / "artifacts"
    config = variant(demo, tmp_path, str(root), instance_data_dir=str(tmp_path / "no-such-folder"))
    done = dreamcore("run", str(config), *(["--stage", stage] if stage else []))
    line = one_error_line(done)
    assert f"'instance_data_dir': folder {tmp_path / 'no-such-folder'} does not exist" in line and "'subject'" in line
    assert not root.exists() and not (tmp_path / "output").exists()


def test_s3_storage_without_credentials_is_one_line_and_not_retried(demo, tmp_path, s3_endpoint) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | {
        "AWS_ENDPOINT_URL_S3": s3_endpoint, "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": str(tmp_path / "none"), "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none")}
    config = variant(demo, tmp_path, "s3://dreamcore-no-credentials/artifacts")
    started = time.monotonic()
    done = dreamcore("run", str(config), env=env)
    line = one_error_line(done)
    assert "storage_root s3://dreamcore-no-credentials/artifacts: no usable credentials" in line
    assert "AWS_ACCESS_KEY_ID" in line
    assert time.monotonic() - started < 15  # no retry delays (the flow used to retry for 19 s)


def test_the_task_retry_policy_refuses_faults_that_a_retry_cannot_fix(prefect_harness) -> None:
    from botocore.exceptions import NoCredentialsError
    from prefect import flow, task

    from dreamcore.storage.faults import StorageFault, StorageUnreachable
    from tasks.retries import retry_unless

    calls: list[str] = []

    @task(retries=2, retry_delay_seconds=0, retry_condition_fn=retry_unless(ValueError, RuntimeError))
    def failing(kind: str) -> None:
        calls.append(kind)
        raise {"disk": StorageFault("ingest stage: cannot write x: no space"), "credentials": NoCredentialsError(),
               "network": ConnectionError("reset"),
               "endpoint": StorageUnreachable("cache stage: lost the storage endpoint http://x")}[kind]

    @flow
    def attempt(kind: str):
        return failing(kind, return_state=True)

    for kind in ("disk", "credentials", "network", "endpoint"):
        attempt(kind, return_state=True)
    # a lost endpoint is retried although it is a one-line RunFault (and a RuntimeError the task refuses)
    assert calls == ["disk", "credentials", "network", "network", "network", "endpoint", "endpoint", "endpoint"]


def _limit_file_size() -> None:
    """In the child: files past 512 bytes (a lease fits, a manifest does not) fail with EFBIG; SIGXFSZ,
    which would kill the process, is ignored."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (512, 512))


def test_a_full_filesystem_names_the_file_and_stage_and_commits_nothing(demo, tmp_path) -> None:
    volume = tmp_path / "small-volume"
    mounted = mount_tmpfs(volume, "size=1m")
    try:
        root = volume / "artifacts"
        config = variant(demo, tmp_path, str(root))
        if mounted:  # a real full disk: fill the 1 MiB tmpfs up to its last few KiB
            with (volume / "filler").open("wb") as filler:
                try:
                    filler.write(b"\0" * (1 << 20))
                except OSError:
                    pass
            preexec, expected = None, "no space left on the device"
        else:  # the process's file-size limit: the kernel refuses the write the same way (EFBIG)
            preexec, expected = _limit_file_size, "file too large"
        done = dreamcore("run", str(config), "--stage", "ingest", preexec_fn=preexec)
        line = one_error_line(done)
        assert line.startswith("error: ingest stage: cannot write ") and str(root) in line, line
        assert expected in line and "nothing was committed" in line
        assert committed_or_partial(root) == []
    finally:
        if mounted:
            unmount(volume)


def test_a_read_only_storage_root_names_the_path_and_commits_nothing(demo, tmp_path) -> None:
    volume = tmp_path / "read-only"
    mounted = mount_tmpfs(volume, "size=1m,ro")
    if not mounted:
        if os.geteuid() == 0:
            pytest.skip("running as root without mount rights: chmod does not stop root's writes")
        volume.chmod(0o555)
    try:
        config = variant(demo, tmp_path, str(volume))
        done = dreamcore("run", str(config), "--stage", "ingest")
        line = one_error_line(done)
        assert line.startswith("error: ingest stage: cannot write ") and str(volume / "_leases") in line, line
        assert ("read-only" if mounted else "permission denied") in line
        assert committed_or_partial(volume) == []
    finally:
        if mounted:
            unmount(volume)
        else:
            volume.chmod(0o755)
