"""Garbage collection of a storage root: stage outputs and cache shards no run needs any more.

What is kept (everything else that gc understands is an orphan):
- every stage folder (`<stage>/<key>/`) whose key a run record under `runs/` mentions (a retrain's
  current model and history, a sweep's runs and winner), and, given a config, the stages that config
  resolves to now; then, transitively, every stage folder a kept stage's `_SUCCESS.json` mentions;
- every cache shard (`.../shards/*.parquet`) a kept cache stage's index lists;
- anything modified within the grace period (a stage in progress writes its files before its marker,
  a cache stage its shards before its index), committed or not, and any stage folder whose newest
  lease (`_leases/<stage>/<key>/`, held and renewed by the run computing it) has not expired by the
  store's clock;
- everything an uncommitted stage that is leased or within the grace period reads, transitively: the
  folders, files and cache locations its `_INPUTS.json` names (written when it takes its lease), what
  their markers and `_INPUTS.json` name in turn, and the shards their indexes list;
- everything gc does not recognise (run records, unknown folders) and shards outside the root
  (a cache_dir shared with other roots is never collected).

Prefect's persisted task results (`_prefect_results/`) that mention a collected stage are collected
too: a Cached task would otherwise hand downstream a folder that is gone.
"""

from dreamcore.gc.plan import GcPlan, Orphan, apply_plan, plan_gc
from dreamcore.gc.roots import config_root_keys

__all__ = ["GcPlan", "Orphan", "apply_plan", "config_root_keys", "plan_gc"]
