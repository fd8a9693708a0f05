"""Benchmark: a 4-point sweep (`dreamcore sweep`) against 4 independent `dreamcore run`s of the same points.

The demo project (tiny SD 1.x model, demo data, its config as written). The points vary learning_rate.
Independent runs: one `dreamcore run` process per point, each with its own config file and storage root,
as a person trying settings by hand would (every stage runs in each). Shared root: the same 4 runs on one
storage root (ingest and caches are reused from the second run on). Sweep: one `dreamcore sweep` process
(shared stages once, max_concurrent 1). Every command runs against its own temporary Prefect API, as
`dreamcore run` does without PREFECT_API_URL. Goal: sweep / independent <= 0.6.
Results go to benchmarks/results/sweep.md.

    .venv/bin/python benchmarks/sweep.py
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RATES = [1e-4, 3e-4, 1e-3, 3e-3]
ENV = os.environ | {"HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "300", "PREFECT_LOGGING_LEVEL": "WARNING",
                    "PYTHONPATH": str(Path(__file__).resolve().parents[1])}


def dreamcore(*args: str, home: Path) -> float:
    """Run one `dreamcore` command in a fresh process with its own PREFECT_HOME; its wall time."""
    started = time.perf_counter()
    run = subprocess.run([sys.executable, "-m", "dreamcore.cli", *args], env=ENV | {"PREFECT_HOME": str(home)},
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if run.returncode != 0:
        raise SystemExit(f"dreamcore {' '.join(args)} failed:\n{run.stderr[-3000:]}")
    return time.perf_counter() - started


def point_config(config_path: Path, rate: float, storage_root: Path) -> Path:
    raw = json.loads(config_path.read_text()) | {"--learning_rate": rate, "--storage_root": str(storage_root)}
    path = config_path.with_name(f"config-{rate:g}-{storage_root.name}.json")
    path.write_text(json.dumps(raw))
    return path


def main() -> None:
    from dreamcore.demo import write_demo_project

    with tempfile.TemporaryDirectory(prefix="dreamcore-sweep-bench-") as tmp:
        tmp = Path(tmp)
        config = write_demo_project(tmp / "demo")
        raw = json.loads(config.read_text())
        independent = sum(dreamcore("run", str(point_config(config, r, tmp / f"root-{i}")), home=tmp / f"h{i}")
                          for i, r in enumerate(RATES))
        spec = tmp / "SWEEP.json"
        spec.write_text(json.dumps({"name": "bench", "parameters": {"learning_rate": RATES}}))
        sweep = dreamcore("sweep", str(point_config(config, RATES[0], tmp / "root-sweep")), str(spec), home=tmp / "w")
        print(f"| {len(RATES)} | {raw.get('--max_train_steps')} | {independent:.1f} | {sweep:.1f} | "
              f"{sweep / independent:.2f} | "
              f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs |")


if __name__ == "__main__":
    main()
