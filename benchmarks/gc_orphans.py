"""Benchmark: storage after 10 caption edits on the demo data, before and after `dreamcore gc --apply`.

The demo project (tiny SD model) runs every stage in-process (`dreamcore run --stage` path, 2 training
steps) and records itself as the current run (runs/bench/latest.json) after the first run and after
each of --edits caption edits (one caption file changed per edit, round robin), as a retrain would.
Then gc plans and applies (grace 0: nothing is in progress). Reported: bytes before/after, orphans by
kind, plan and apply time, and a check that the current run's stages are all still committed.
Results go to benchmarks/results/gc.md.

    .venv/bin/python benchmarks/gc_orphans.py                  # 10 edits
    .venv/bin/python benchmarks/gc_orphans.py --edits 3
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from collections import Counter
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def run_all(config) -> dict:
    from dreamcore.pipeline import stage_names
    from dreamcore.pipeline.local import run_stage_locally

    return {stage: run_stage_locally(config, stage) for stage in stage_names() if stage != "refine"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edits", type=int, default=10)
    parser.add_argument("--steps", type=int, default=2)
    args = parser.parse_args()

    import torch

    from dreamcore.config import load_run_config
    from dreamcore.demo import write_demo_project
    from dreamcore.gc import apply_plan, plan_gc
    from dreamcore.retrain import record_run
    from dreamcore.storage import ArtifactStore
    from dreamcore.storage.stages import SUCCESS_MARKER

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(prefix="dreamcore-gc-bench-") as tmp:
        config_path = write_demo_project(Path(tmp) / "demo")
        raw = json.loads(config_path.read_text()) | {"--max_train_steps": args.steps,
                                                      "--checkpointing_steps": args.steps}
        config_path.write_text(json.dumps(raw))
        config = load_run_config(config_path)
        store = ArtifactStore(config.training.resolved_storage_root)
        captions = sorted((config_path.parent / "data" / "instance_images").glob("*.txt"))
        started = time.perf_counter()
        results = run_all(config)
        record_run(store, "bench", results)
        for edit in range(args.edits):
            caption = captions[edit % len(captions)]
            caption.write_text(caption.read_text().strip() + f", edit {edit}\n")
            results = run_all(config)
            record_run(store, "bench", results)
        pipeline_s = time.perf_counter() - started

        t0 = time.perf_counter()
        plan = plan_gc(store, grace_minutes=0)
        plan_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        freed = apply_plan(store, plan)
        apply_s = time.perf_counter() - t0
        after = plan_gc(store, grace_minutes=0)
        current = [v for v in _stage_results(results)]
        intact = all(store.exists(f"{r['stage']}/{r['key']}/{SUCCESS_MARKER}") for r in current)
        kinds = Counter(o.kind for o in plan.orphans)
        print(f"| {args.edits} | {plan.total_bytes:,} | {after.total_bytes:,} | {freed:,} | "
              f"{kinds['stage']} stage folders, {kinds['shard']} shards, {kinds['prefect-result']} results | "
              f"{plan_s:.3f} | {apply_s:.3f} | {intact and not after.orphans} | {pipeline_s:.0f} | "
              f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs |")


def _stage_results(value):
    if isinstance(value, dict) and {"stage", "key", "output_uri"} <= value.keys():
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _stage_results(item)


if __name__ == "__main__":
    main()
