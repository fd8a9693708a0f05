"""`dreamcore gc CONFIG-or-STORAGE [--apply]`: list (and with --apply delete) what no run needs."""

from __future__ import annotations

import argparse
import time

from dreamcore.config.loader import load_run_config
from dreamcore.gc import apply_plan, plan_gc
from dreamcore.gc.roots import config_root_keys
from dreamcore.storage import ArtifactStore

DEFAULT_GRACE_MINUTES = 24 * 60.0  # a run in progress reads stages committed up to this long ago (flows/gc.py too)


def register(commands) -> None:
    """Add the `gc` command to the dreamcore CLI."""
    gc = commands.add_parser("gc", help="list (dry run) or delete stage outputs and cache shards no run needs")
    gc.add_argument("target", help="a run's config.json (its current stages are kept too) or a storage root URL")
    gc.add_argument("--apply", action="store_true", help="delete the orphans (default: only list them)")
    gc.add_argument("--grace-minutes", type=float, default=DEFAULT_GRACE_MINUTES,
                    help="keep anything modified this recently: a stage in progress, or read by one "
                    f"(default {DEFAULT_GRACE_MINUTES:g})")
    gc.set_defaults(handler=_gc)


def gc_target(target: str) -> tuple[str, set[str]]:
    """The storage root and the extra stage keys to keep: a config's current stages, none for a bare root."""
    if not target.endswith(".json"):
        return target, set()
    config = load_run_config(target)
    root = config.training.resolved_storage_root
    return root, config_root_keys(config, ArtifactStore(root))


def _gc(args: argparse.Namespace) -> int:
    root, keys = gc_target(args.target)
    store = ArtifactStore(root)
    started = time.perf_counter()
    plan = plan_gc(store, grace_minutes=args.grace_minutes, extra_root_keys=keys)
    for orphan in plan.orphans:
        print(f"{orphan.kind:15} {orphan.bytes:>12,} {orphan.path}  ({orphan.reason})")
    for path in plan.kept_fresh:
        print(f"{'kept (fresh)':15} {'':>12} {path}")
    verb = "freed" if args.apply else "would free"
    if args.apply:
        apply_plan(store, plan)
    print(f"{len(plan.orphans)} orphans under {plan.root}: {verb} {plan.orphan_bytes:,} of {plan.total_bytes:,} "
          f"bytes ({plan.referenced_stages} referenced stage folders kept) in {time.perf_counter() - started:.2f}s"
          + ("" if args.apply else "; --apply deletes them"))
    return 0
