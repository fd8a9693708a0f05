"""Run stages in-process, without Prefect: `dreamcore run --stage NAME` (one stage, for debugging) and
`dreamcore run --until NAME` / `--stages a,b,c` (a chain of stages in one process).

Each runner reads its upstream results from storage (their committed markers) and returns the
stage results as plain dicts, so a chain commits and reuses exactly what separate stage runs would;
what one process saves is the import of torch, diffusers and peft (seconds) for every stage after the first.
"""

from __future__ import annotations

import gc
import resource
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from dreamcore.config import RunConfig
from dreamcore.pipeline.generated import committed_generation, with_generated_datasets
from dreamcore.pipeline.stages import find_stage
from dreamcore.storage import ArtifactStore

# Result flags by which a stage runner says it did work (a count or a bool); every runner reports one.
WORK_FLAGS = ("decoded", "encoded", "generated", "trained", "evaluated", "refined")


def run_stage_locally(config: RunConfig, stage: str) -> dict:
    """Run one named stage in this process against the config's storage root."""
    declared = find_stage(stage)
    store = ArtifactStore(config.training.resolved_storage_root)
    if declared.sees_generated_datasets:
        config = with_generated_datasets(config, committed_generation(config, store))
    return declared.run_locally(config, store)


def run_stages_locally(config: RunConfig, stages: Iterable[str],
                       on_stage: Callable[[str, dict], None] | None = None) -> dict[str, dict]:
    """Run the named stages in pipeline order in this one process; by stage name: status ("ran",
    "reused", "nothing to do" (a generation stage the config does not ask for) or "skipped" (a stage
    the flow skips for this config)), seconds, this process's peak
    RSS so far and its RSS once the stage's objects are released (MB), and the stage's result.

    `on_stage(name, summary)` is called as each stage ends (the CLI prints a progress line).
    """
    summaries: dict[str, dict] = {}
    for name in stages:
        declared = find_stage(name)
        started = time.perf_counter()
        if declared.wanted(config.training):
            result = run_stage_locally(config, name)
            status = "ran" if did_work(result) else "reused" if result else "nothing to do"
        else:
            result, status = None, "skipped"
        gc.collect()  # a stage's models and tables go before the next stage loads its own
        summaries[name] = {"status": status, "seconds": round(time.perf_counter() - started, 3),
                           "peak_rss_mb": peak_rss_mb(), "rss_after_mb": current_rss_mb(), "result": result}
        if on_stage is not None:
            on_stage(name, summaries[name])
    return summaries


def did_work(result: Any) -> bool:
    """Whether a stage result (nested dicts of StageResult dicts) reports any work done: a true WORK_FLAGS value."""
    if not isinstance(result, Mapping):
        return False
    if any(bool(result.get(flag)) for flag in WORK_FLAGS):
        return True
    # A StageResult's own counts and details describe its output, not this run's work.
    return any(did_work(value) for key, value in result.items() if key not in ("counts", "details"))


def peak_rss_mb() -> float:
    """This process's peak resident set size so far, in MB.

    Linux: VmHWM, the high-water mark of this program's own memory. ru_maxrss would not do there: a process
    started by fork (or vfork) and exec inherits its parent's high-water mark, so a stage run from a large
    parent (a test runner, a worker) would report the parent's size. Elsewhere ru_maxrss (bytes on macOS).
    """
    try:
        with open("/proc/self/status") as status:
            return round(next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024, 1)
    except (OSError, StopIteration):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return round(peak / (1 << 20 if sys.platform == "darwin" else 1 << 10), 1)


def current_rss_mb() -> float | None:
    """This process's resident set size now, in MB (None where /proc is absent)."""
    try:
        with open("/proc/self/statm") as statm:
            pages = int(statm.read().split()[1])
    except OSError:
        return None
    return round(pages * resource.getpagesize() / (1 << 20), 1)
