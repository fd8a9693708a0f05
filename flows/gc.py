"""Flow: garbage-collect a storage root (dreamcore.gc). A dry run unless `apply`; deployments can
schedule it (deployments/prefect.yaml, `dreamcore serve --gc-cron`)."""

from __future__ import annotations

from prefect import flow

from dreamcore.config import RunConfig
from dreamcore.gc import config_root_keys
from dreamcore.storage import ArtifactStore
from tasks.gc import delete_orphans, plan_collection

DEFAULT_GRACE_MINUTES = 24 * 60.0


@flow(name="gc", log_prints=True)
def gc(config: RunConfig | None = None, storage_root: str | None = None, apply: bool = False,
       grace_minutes: float = DEFAULT_GRACE_MINUTES) -> dict:
    """List (and with `apply` delete) the stage outputs and cache shards no run record needs.

    Give the run `config` (its storage root; its current stages are kept too) or a bare `storage_root`.
    Anything modified within `grace_minutes` is kept: a stage in progress, or one a running stage reads.
    """
    if (config is None) == (storage_root is None):
        raise ValueError("gc: give either config (a run config) or storage_root (a storage URL), not both or neither")
    root = storage_root or config.training.resolved_storage_root
    keys = sorted(config_root_keys(config, ArtifactStore(root))) if config is not None else []
    plan = plan_collection(root, keys, grace_minutes)
    freed = delete_orphans(root, plan) if apply and plan["orphans"] else 0
    print(f"{len(plan['orphans'])} orphans, {plan['orphan_bytes']:,} of {plan['total_bytes']:,} bytes"
          + (f": {freed:,} bytes freed" if apply else " (dry run: apply=True deletes them)"))
    return {"plan": plan, "applied": apply, "freed_bytes": freed}
