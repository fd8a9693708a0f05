"""A real worker from the wheel: `pip install` of the built wheel (not editable) into a fresh venv, a
process work pool, `prefect deploy` from deployments/prefect-wheel.yaml, `prefect worker start --run-once`,
and the dreambooth deployment runs to completion on the tiny demo model, nowhere near the checkout.

The venv reuses this environment's dependencies through a .pth line (installing torch & co. again would
take far longer than the test) and gets dreamcore itself from the wheel with --no-deps."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
import urllib.request
from pathlib import Path

import pytest

from tests.e2e.conftest import REPO, wait_for

pytestmark = pytest.mark.slow
SOURCES = ("pyproject.toml", "README.md", "dreamcore", "flows", "tasks", "deployments")


def _build_wheel(tmp_path: Path) -> Path:
    """The wheel, built from a copy of the sources (the build leaves build/ and egg-info behind)."""
    source = tmp_path / "source"
    source.mkdir()
    for name in SOURCES:
        copy = shutil.copytree if (REPO / name).is_dir() else shutil.copy2
        copy(REPO / name, source / name, **({"ignore": shutil.ignore_patterns("__pycache__")}
                                            if (REPO / name).is_dir() else {}))
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path / "dist")], check=True)
    return next((tmp_path / "dist").glob("dreamcore-*.whl"))


def _worker_venv(tmp_path: Path, wheel: Path) -> Path:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    # A plain path line: its own .pth files (this environment's editable dreamcore) are not processed.
    Path(site, "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q", str(wheel)],
                   check=True)
    return python


def _flow_runs(api_url: str, deployment: str) -> list[dict]:
    request = urllib.request.Request(f"{api_url}/flow_runs/filter", data=json.dumps({}).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        runs = json.loads(response.read())
    return [r for r in runs if r.get("deployment_id") == deployment]


def test_wheel_worker_runs_the_dreambooth_deployment(prefect_server, tmp_path):
    from dreamcore.config import load_run_config
    from dreamcore.demo import write_demo_project

    wheel = _build_wheel(tmp_path)
    python = _worker_venv(tmp_path, wheel)
    workdir = tmp_path / "work"
    workdir.mkdir()
    env = {k: v for k, v in prefect_server.env.items() if k != "PYTHONPATH"} | {
        "PREFECT_CLI_PROMPT": "false", "DREAMCORE_WORKDIR": str(workdir), "HF_HUB_OFFLINE": "1",
        "PATH": f"{python.parent}:/usr/bin:/bin"}

    def run(*args: str, **kwargs) -> subprocess.CompletedProcess:
        return subprocess.run([str(python), *args], env=env, cwd=workdir, capture_output=True, text=True, **kwargs)

    where = run("-c", "import dreamcore, flows, tasks, deployments; print(flows.__file__, dreamcore.__file__)")
    assert where.returncode == 0, where.stderr
    assert all(path.startswith(str(tmp_path / "venv")) for path in where.stdout.split()), where.stdout

    shutil.copy(wheel.parent.parent / "source" / "deployments" / "prefect-wheel.yaml", workdir / "prefect.yaml")
    created = run("-m", "prefect", "work-pool", "create", "dreamcore-process", "--type", "process", "--overwrite")
    assert created.returncode == 0, created.stdout + created.stderr
    deployed = run("-m", "prefect", "--no-prompt", "deploy", "--all", timeout=300)
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr

    config = load_run_config(write_demo_project(tmp_path / "demo"))
    training = config.training.model_copy(update={"max_train_steps": 2, "checkpointing_steps": 2})
    params = {"config": config.model_copy(update={"training": training}).model_dump(mode="json")}
    started = run("-m", "prefect", "deployment", "run", "dreambooth/default", "--params", json.dumps(params))
    assert started.returncode == 0, started.stdout + started.stderr

    worker = run("-m", "prefect", "worker", "start", "--pool", "dreamcore-process", "--run-once", timeout=900)
    assert worker.returncode == 0, worker.stdout[-3000:] + worker.stderr[-3000:]

    def finished():
        states = [r["state"]["type"] for r in _flow_runs(prefect_server.api_url, _deployment_id(prefect_server))]
        return states if states and all(s in ("COMPLETED", "FAILED", "CRASHED") for s in states) else None
    assert wait_for(finished, 60, "the flow run to finish") == ["COMPLETED"], worker.stdout[-3000:]
    store_root = Path(config.training.resolved_storage_root)
    assert any(store_root.glob("train/*/_SUCCESS.json")) and any(store_root.glob("evaluate/*/_SUCCESS.json"))


def _deployment_id(server) -> str:
    with urllib.request.urlopen(f"{server.api_url}/deployments/name/dreambooth/default", timeout=10) as response:
        return json.loads(response.read())["id"]
