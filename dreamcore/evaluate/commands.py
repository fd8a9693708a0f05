"""`dreamcore report RUN`: rebuild the run report (Markdown + HTML) of a committed evaluation."""

from __future__ import annotations

import argparse
import sys

from dreamcore.config import load_config
from dreamcore.storage import ArtifactStore


def register(commands) -> None:
    """Add the `report` command to the dreamcore CLI."""
    report = commands.add_parser("report", help="rebuild the run report of a committed evaluation")
    report.add_argument("run", help="the run's config.json (its storage_root is used) or a storage root URL")
    report.add_argument("--key", help="the evaluate stage key (default: the newest committed evaluation)")
    report.add_argument("--all", action="store_true", help="rebuild the report of every committed evaluation")
    report.set_defaults(handler=_report)


def _report(args: argparse.Namespace) -> int:
    from dreamcore.evaluate.report import write_report
    from dreamcore.evaluate.stage import EVALUATE_STAGE, committed_evaluations

    store = ArtifactStore(_storage_root(args.run))
    results = committed_evaluations(store)
    if args.key:
        results = [r for r in results if r.key == args.key]
    elif not args.all:
        results = results[-1:]
    if not results:
        where = f"key {args.key} " if args.key else ""
        print(f"no committed evaluation {where}under {store.uri()}: run the evaluate stage first "
              "(dreamcore run CONFIG --stage evaluate)", file=sys.stderr)
        return 1
    for result in results:
        report, _ = write_report(store, f"{EVALUATE_STAGE}/{result.key}")
        print(store.uri(report))
        print(store.uri(report.replace("report.md", "report.html")))
    return 0


def _storage_root(run: str) -> str:
    """A config file's storage root, or `run` itself when it is not a JSON file."""
    if run.endswith(".json"):
        loaded = load_config(run)
        if loaded.training is None:
            raise SystemExit(f"{run}: no training config in it; give the run's config.json or a storage root")
        return loaded.training.resolved_storage_root
    return run
