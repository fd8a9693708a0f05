"""A real `prefect server` on 127.0.0.1 for integration tests, and helpers to talk to it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.training_fault import FAULT_FILE_ENV

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
FAULT_SITE = Path(__file__).resolve().parent / "training_fault_site"


@dataclass
class PrefectServer:
    api_url: str
    ui_url: str
    env: dict[str, str]  # environment for processes that should talk to this server
    log: Path


def wait_for(check, timeout: float, what: str, interval: float = 0.5):
    """Poll `check()` until it returns something truthy; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def _healthy(api_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory) -> Iterator[PrefectServer]:
    home = tmp_path_factory.mktemp("prefect-server-home")
    port = free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_API_URL": api_url,
        "PREFECT_UI_API_URL": api_url,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "INFO",
        "PYTHONPATH": str(REPO),
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    log = home / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(VENV_BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env={k: v for k, v in env.items() if k != "PREFECT_API_URL"},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for(lambda: _healthy(api_url) or process.poll() is not None, 120, "prefect server health")
        if process.poll() is not None:
            raise AssertionError(f"prefect server exited: {log.read_text()[-3000:]}")
        yield PrefectServer(api_url=api_url, ui_url=f"http://127.0.0.1:{port}", env=env, log=log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture
def served(prefect_server, tmp_path) -> Iterator[tuple[PrefectServer, Path, subprocess.Popen]]:
    """`dreamcore serve` on the demo project against the test server, with the training fault armed
    (tests/e2e/training_fault_site); yields (server, config, process).

    The deployments are named after the test's tmp folder: dreambooth/<name> and retrain/<name>.
    """
    from dreamcore.demo import write_demo_project

    config = write_demo_project(tmp_path / "demo")
    log = tmp_path / "serve.log"
    # Tests write a step number into this file to make the next training fail once (tests/training_fault.py);
    # FAULT_SITE's sitecustomize arms the fault in the serving process and in every flow-run process.
    env = prefect_server.env | {
        FAULT_FILE_ENV: str(tmp_path / "training-fault"),
        "PYTHONPATH": f"{FAULT_SITE}{os.pathsep}{prefect_server.env['PYTHONPATH']}",
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(VENV_BIN / "dreamcore"), "serve", str(config), "--cron", "0 3 * * 0", "--name", tmp_path.name[:40]],
            env=env,
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield prefect_server, config, process
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
        print(log.read_text()[-5000:])
