"""Listing a storage root once, deciding what is an orphan, and deleting it."""

from __future__ import annotations

import json
import posixpath
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from dreamcore.storage import ArtifactStore
from dreamcore.storage.faults import RunFault
from dreamcore.storage.leases import INPUTS, LEASES, newest_lease, store_now
from dreamcore.storage.stages import SUCCESS_MARKER, stage_dir
from dreamcore.storage.store import modified_time

# Stage keys are 20 hex digits (dreamcore.storage.stage_key); content digests are longer and shard
# names 24, so a whole-word match of exactly 20 finds the stage folders a JSON document refers to.
STAGE_KEY = re.compile(r"(?<![0-9a-f])[0-9a-f]{20}(?![0-9a-f])")
RUN_RECORDS = "runs"
PREFECT_RESULTS = "_prefect_results"
SHARDS = "shards"


@dataclass(frozen=True)
class Orphan:
    """One thing gc deletes: a stage folder, a shard or a Prefect result, with its size."""

    path: str  # relative to the root
    kind: str  # "stage" | "shard" | "prefect-result"
    bytes: int
    reason: str


@dataclass
class GcPlan:
    """What a gc run found: the orphans, and what it kept (counts and bytes)."""

    root: str
    orphans: list[Orphan] = field(default_factory=list)
    kept_bytes: int = 0
    total_bytes: int = 0
    kept_fresh: list[str] = field(default_factory=list)  # kept only because of the grace period
    kept_for_active: list[str] = field(default_factory=list)  # read by a stage that runs or may resume
    referenced_stages: int = 0

    @property
    def orphan_bytes(self) -> int:
        return sum(o.bytes for o in self.orphans)

    def as_dict(self) -> dict[str, Any]:
        return {"root": self.root, "total_bytes": self.total_bytes, "orphan_bytes": self.orphan_bytes,
                "kept_bytes": self.kept_bytes, "referenced_stages": self.referenced_stages,
                "kept_fresh": self.kept_fresh, "kept_for_active": self.kept_for_active,
                "orphans": [{"path": o.path, "kind": o.kind, "bytes": o.bytes, "reason": o.reason}
                            for o in self.orphans]}


@dataclass
class _Listing:
    """Every file under the root, grouped the way gc reasons about them."""

    stages: dict[str, dict[str, tuple[int, float]]] = field(default_factory=dict)  # "stage/key" -> files
    shards: dict[str, tuple[int, float]] = field(default_factory=dict)  # relative path -> (bytes, mtime)
    results: dict[str, tuple[int, float]] = field(default_factory=dict)
    records: list[str] = field(default_factory=list)
    leased: set[tuple[str, str]] = field(default_factory=set)  # (stage, key) with a lease file
    other_bytes: int = 0


def plan_gc(store: ArtifactStore, *, grace_minutes: float, extra_root_keys: Iterable[str] = (),
            now: float | None = None) -> GcPlan:
    """Decide what is orphaned under `store` (nothing is deleted: see apply_plan). Times are the store's:
    `now` defaults to the store's clock (local time where the store cannot be written)."""
    now = _now(store) if now is None else now
    # Strictly after: grace 0 keeps nothing for its age, also on stores whose times are whole seconds.
    fresh_after = now - grace_minutes * 60
    listing = _list(store)
    plan = GcPlan(store.uri(), total_bytes=_total(listing))
    computing = _held_leases(store, listing, now)
    # Uncommitted stages that run (a live lease) or may resume (touched within the grace period):
    # everything they read is kept, whatever the grace period and whoever asked.
    active = sorted(folder for folder, files in listing.stages.items() if SUCCESS_MARKER not in files
                    and (folder in computing or max(mtime for _, mtime in files.values()) > fresh_after))
    read_keys, read_locations = _inputs_of(store, listing, active)
    kept = _referenced_stages(store, listing, set(extra_root_keys))
    if read_keys:
        with_inputs = _referenced_stages(store, listing, set(extra_root_keys) | read_keys)
        plan.kept_for_active = sorted(with_inputs - kept - set(active))
        kept = with_inputs
    plan.referenced_stages = len(kept)
    collected: set[str] = set()
    for folder, files in sorted(listing.stages.items()):
        if folder in kept:
            continue
        if folder in computing or max(mtime for _, mtime in files.values()) > fresh_after:
            plan.kept_fresh.append(folder)
            kept.add(folder)
            continue
        committed = any(name == SUCCESS_MARKER for name in files)
        plan.orphans.append(Orphan(folder, "stage", sum(size for size, _ in files.values()),
                                   "committed, referenced by no run record" if committed
                                   else "never committed, untouched for longer than the grace period"))
        collected.add(folder.rsplit("/", 1)[-1])
    needed = _referenced_shards(store, listing, kept)
    for path, (size, mtime) in sorted(listing.shards.items()):
        if path in needed:
            continue
        if any(path.startswith(f"{location}/") for location in read_locations):  # a cache stage writing here
            plan.kept_for_active.append(path)
            continue
        if mtime > fresh_after:
            plan.kept_fresh.append(path)
            continue
        plan.orphans.append(Orphan(path, "shard", size, "no kept cache index lists it"))
    for path, (size, _) in sorted(listing.results.items()):
        mentioned = set(STAGE_KEY.findall(store.read_bytes(path).decode("utf-8", "replace")))
        if mentioned & collected:
            plan.orphans.append(Orphan(path, "prefect-result", size, "a cached task result naming a collected stage"))
    plan.kept_bytes = plan.total_bytes - plan.orphan_bytes
    return plan


def apply_plan(store: ArtifactStore, plan: GcPlan) -> int:
    """Delete every orphan of `plan`; returns the bytes freed."""
    for orphan in plan.orphans:
        store.remove(orphan.path)
    store.invalidate()
    return plan.orphan_bytes


def _list(store: ArtifactStore) -> _Listing:
    listing = _Listing()
    store.invalidate()
    if not store.fs.exists(store.root_path):
        return listing
    prefix = len(store.root_path) + 1
    for full, info in store.fs.find(store.root_path, detail=True).items():
        if info.get("type") == "directory":
            continue
        relative = full[prefix:]
        entry = (int(info.get("size") or 0), modified_time(info))
        parts = relative.split("/")
        if parts[0] == LEASES and len(parts) == 4:  # _leases/<stage>/<key>/<generation>.json
            listing.leased.add((parts[1], parts[2]))
            listing.other_bytes += entry[0]
        elif parts[0] == RUN_RECORDS:
            listing.records.append(relative)
            listing.other_bytes += entry[0]
        elif parts[0] == PREFECT_RESULTS:
            listing.results[relative] = entry
        elif len(parts) >= 2 and parts[-2] == SHARDS and relative.endswith(".parquet"):
            listing.shards[relative] = entry
        elif len(parts) >= 3 and STAGE_KEY.fullmatch(parts[1]):
            listing.stages.setdefault(f"{parts[0]}/{parts[1]}", {})["/".join(parts[2:])] = entry
        else:
            listing.other_bytes += entry[0]
    return listing


def _now(store: ArtifactStore) -> float:
    try:
        return store_now(store, "gc")
    except (OSError, RunFault):  # a read-only root can still be listed
        return time.time()


def _inputs_of(store: ArtifactStore, listing: _Listing, folders: Iterable[str]) -> tuple[set[str], set[str]]:
    """What the stage folders' _INPUTS.json name: stage keys, and other locations under the root (cache
    locations a cache stage is writing shards into)."""
    keys: set[str] = set()
    locations: set[str] = set()
    for folder in folders:
        if INPUTS not in listing.stages[folder]:
            continue
        for uri in json.loads(store.read_bytes(f"{folder}/{INPUTS}")).get("reads", []):
            relative = _relative_to_root(store, uri.rstrip("/"))
            if relative is None:  # outside the root: never collected here
                continue
            found = STAGE_KEY.findall(relative)
            keys.update(found)
            if not found and relative:
                locations.add(posixpath.normpath(relative))
    return keys, locations


def _held_leases(store: ArtifactStore, listing: _Listing, now: float) -> set[str]:
    """Stage folders a live run is computing right now: their newest lease has not expired by the store's
    clock (a stage that writes slowly may leave its files untouched for longer than the grace period)."""
    held = set()
    for stage, key in listing.leased:
        lease = newest_lease(store, stage, key)
        if lease is not None and lease.expires_at > now:
            held.add(stage_dir(stage, key))
    return held


def _total(listing: _Listing) -> int:
    return (listing.other_bytes + sum(s for s, _ in listing.shards.values())
            + sum(s for s, _ in listing.results.values())
            + sum(s for files in listing.stages.values() for s, _ in files.values()))


def _referenced_stages(store: ArtifactStore, listing: _Listing, root_keys: set[str]) -> set[str]:
    """Stage folders ("stage/key") the run records and root keys reach, following each kept marker."""
    by_key: dict[str, list[str]] = {}
    for folder in listing.stages:
        by_key.setdefault(folder.rsplit("/", 1)[-1], []).append(folder)
    pending = set(root_keys)
    for record in listing.records:
        if record.endswith(".json"):
            pending |= set(STAGE_KEY.findall(store.read_bytes(record).decode("utf-8", "replace")))
    seen: set[str] = set()
    kept: set[str] = set()
    while pending:
        key = pending.pop()
        if key in seen:
            continue
        seen.add(key)
        for folder in by_key.get(key, []):
            kept.add(folder)
            for document in (SUCCESS_MARKER, INPUTS):  # what it committed from, what it reads
                if document in listing.stages[folder]:
                    text = store.read_bytes(f"{folder}/{document}").decode("utf-8", "replace")
                    pending |= set(STAGE_KEY.findall(text)) - seen
    return kept


def _referenced_shards(store: ArtifactStore, listing: _Listing, kept: set[str]) -> set[str]:
    """Shards (relative to the root) listed by the index of a kept, committed cache stage."""
    needed: set[str] = set()
    for folder in kept:
        if SUCCESS_MARKER not in listing.stages.get(folder, {}):
            continue
        details = json.loads(store.read_bytes(f"{folder}/{SUCCESS_MARKER}")).get("details") or {}
        # A text cache also lists the indexes of the text_embeds datasets some datasets route their captions to.
        for cache in (details, *(details.get("text_embeds") or {}).values()):
            if not (cache.get("cache_uri") and cache.get("index")):
                continue
            location = _relative_to_root(store, cache["cache_uri"])
            if location is None:  # a cache_dir outside the root: never collected here
                continue
            for shard in _shard_column(store, cache["index"]):
                needed.add(posixpath.normpath(posixpath.join(location, shard)))
    return needed


def _relative_to_root(store: ArtifactStore, uri: str) -> str | None:
    for base in (store.root_url, store.root_path):
        if uri == base:
            return ""
        if uri.startswith(base + "/"):
            return uri[len(base) + 1:]
    return None


def _shard_column(store: ArtifactStore, index: str) -> set[str]:
    """The shards a cache index names: its rows' and (a VAE cache of an edit dataset) their references' rows'."""
    from dreamcore.cache.parquet_io import read_columns  # numpy and pyarrow only when a cache index is read

    columns = read_columns(store, index, ("shard", "reference_shards"))
    return set(columns["shard"]) | {shard for shards in columns.get("reference_shards", ()) for shard in shards or ()}
