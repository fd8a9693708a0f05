"""Prefect tasks of the gc flow: plan (what is orphaned, as a table artifact) and delete."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.artifacts import create_table_artifact

from dreamcore.gc import GcPlan, Orphan, apply_plan, plan_gc
from dreamcore.storage import ArtifactStore


@task(name="gc-plan", task_run_name="gc-plan", cache_policy=None)
def plan_collection(storage_root: str, root_keys: list[str], grace_minutes: float) -> dict:
    """List the root once and decide what is orphaned; never cached (the point is to look again)."""
    plan = plan_gc(ArtifactStore(storage_root), grace_minutes=grace_minutes, extra_root_keys=root_keys)
    get_run_logger().info("%d orphans under %s: %d of %d bytes; %d kept as fresh", len(plan.orphans), plan.root,
                          plan.orphan_bytes, plan.total_bytes, len(plan.kept_fresh))
    create_table_artifact(
        key="gc-orphans", table=[{"path": o.path, "kind": o.kind, "bytes": o.bytes, "reason": o.reason}
                                 for o in plan.orphans] or [{"path": "(none)", "kind": "", "bytes": 0, "reason": ""}],
        description=f"Orphans under `{plan.root}`: {plan.orphan_bytes:,} of {plan.total_bytes:,} bytes; "
        f"{len(plan.kept_fresh)} kept for the grace period of {grace_minutes:g} minutes.")
    return plan.as_dict()


@task(name="gc-apply", task_run_name="gc-apply", cache_policy=None)
def delete_orphans(storage_root: str, plan: dict) -> int:
    """Delete what the plan lists; returns the bytes freed."""
    orphans = [Orphan(o["path"], o["kind"], o["bytes"], o["reason"]) for o in plan["orphans"]]
    freed = apply_plan(ArtifactStore(storage_root), GcPlan(plan["root"], orphans))
    get_run_logger().info("deleted %d orphans: %d bytes freed", len(orphans), freed)
    return freed
