"""Benchmark: the demo pipeline cold, warm (everything committed: all stages Cached), and the same
stages called directly without Prefect (the orchestration overhead).

Each measurement runs in its own process with its own fresh demo project and PREFECT_HOME, so
nothing is shared but the disk cache. Ephemeral Prefect (no server) starts a temporary API inside
the process; that start-up is reported separately, since a served deployment pays it once.

    .venv/bin/python benchmarks/pipeline_rerun.py            # writes benchmarks/results/pipeline_rerun.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "pipeline_rerun.md"
REPO = Path(__file__).resolve().parents[1]

# Runs inside a child process: prints one JSON line with the timings it measured.
CHILD = r"""
import json, sys, time
mode, workdir = sys.argv[1], sys.argv[2]
from dreamcore.config import load_run_config
from dreamcore.demo import write_demo_project
config = load_run_config(write_demo_project(workdir))
timings = {}
if mode == "direct":
    from dreamcore.pipeline import STAGES
    from dreamcore.storage import ArtifactStore
    store = ArtifactStore(config.training.resolved_storage_root)
    start = time.perf_counter()
    for stage in STAGES:
        if stage.wanted(config.training):
            stage.run_locally(config, store)
    timings["direct"] = time.perf_counter() - start
else:
    from prefect import flow
    from dreamcore.cli import run_dreambooth

    @flow(name="warm-up")
    def warm_up():
        return None

    start = time.perf_counter()
    warm_up()  # starts the ephemeral API
    timings["prefect_startup"] = time.perf_counter() - start
    for name in ("cold", "warm"):
        start = time.perf_counter()
        run_dreambooth(config)  # as `dreamcore run CONFIG` does
        timings[name] = time.perf_counter() - start
print("TIMINGS " + json.dumps(timings))
"""


def measure(mode: str) -> dict[str, float]:
    """Run one child process on a fresh demo project and return its timings."""
    with tempfile.TemporaryDirectory(prefix="dreamcore-bench-") as folder:
        env = os.environ | {
            "HF_HUB_OFFLINE": "1",
            "PREFECT_HOME": str(Path(folder) / "prefect"),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_LOGGING_LEVEL": "WARNING",
            "PYTHONPATH": str(REPO),
        }
        out = subprocess.run([sys.executable, "-c", CHILD, mode, str(Path(folder) / "demo")], env=env,
                             capture_output=True, text=True, check=True)
    line = next(line for line in out.stdout.splitlines() if line.startswith("TIMINGS "))
    return json.loads(line.removeprefix("TIMINGS "))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    flows = [measure("flow") for _ in range(args.repeats)]
    direct = [measure("direct") for _ in range(args.repeats)]
    best = {key: min(run[key] for run in flows) for key in flows[0]}
    best_direct = min(run["direct"] for run in direct)
    rows = [
        ("dreambooth flow as `dreamcore run` runs it, cold (every stage runs)", best["cold"]),
        ("dreambooth flow as `dreamcore run` runs it, warm (every stage Cached)", best["warm"]),
        ("the same stages called directly, cold (no Prefect)", best_direct),
        ("ephemeral Prefect API start-up (once per process)", best["prefect_startup"]),
    ]
    lines = [
        "# Demo pipeline: cold vs warm rerun, and orchestration overhead",
        "",
        f"Command: `.venv/bin/python benchmarks/pipeline_rerun.py --repeats {args.repeats}` "
        f"({time.strftime('%Y-%m-%d')}, {platform.machine()}, {os.cpu_count()} cores, CPU; best of {args.repeats}).",
        "Demo project: tiny SD, 8 subject + 6 class images at 64 px, 30 LoRA steps, evaluation with CLIP.",
        "",
        "| run | seconds |",
        "|---|---|",
        *[f"| {name} | {seconds:.1f} |" for name, seconds in rows],
        "",
        f"- Warm / cold: **{100 * best['warm'] / best['cold']:.1f} %** (goal <= 5 %).",
        f"- Orchestration overhead (flow cold - direct cold): {best['cold'] - best_direct:.1f} s "
        f"({100 * (best['cold'] - best_direct) / best_direct:.0f} % of the direct run), excluding the "
        "API start-up above.",
        "",
        "Raw runs: " + json.dumps({"flow": flows, "direct": direct}),
    ]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
