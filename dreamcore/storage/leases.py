"""Stage leases: one process computes a stage key; others with the same key wait and reuse its commit.

A lease is a small JSON file `_leases/<stage>/<key>/<generation>.json` (owner, ttl) created
exclusively: on local disk a fully written temporary file is hard-linked to its name (atomic, fails
when it exists); on S3 a conditional PUT (If-None-Match: *, s3fs mode="create"). The holder renews
it (rewrites it) from a background thread while it computes. A waiter polls for the commit; when the
newest generation has expired (its owner died or froze), the waiter creates the next generation,
which only one waiter can, and resumes the stage from what the old owner left (every stage resumes
from its leftovers).

Expiry is judged by the store's clock, never a host's: a lease has expired when the store's "now"
(the modification time the store gives a probe file written just before) is past the lease file's
modification time (as the store reports it: S3's LastModified, the local mtime) plus its ttl. A host
whose clock is minutes off neither takes over a live lease nor keeps a dead one.

Fencing: the generation number says who owns the key now. A holder calls `HeldLease.check` before it
writes anything that matters (each checkpoint, the commit); once a newer generation exists, its own
lease has expired or another run has committed, the check raises LeaseLost and the holder stops
without writing. The commit marker itself is created exclusively (storage.stages.commit_held), so a
holder that wakes up after another run committed can never overwrite that commit.

Object stores without conditional writes (fsspec's generic create is check-then-write) narrow the
race but cannot close it; two runs may then both compute, as before leases (the last commit wins,
with equal content).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from dreamcore.storage.faults import RunFault, unreachable_fault, write_fault
from dreamcore.storage.store import ArtifactStore, modified_time

logger = logging.getLogger(__name__)

LEASES = "_leases"
CLOCK_PROBE = "_now.json"  # _leases/<stage>/_now.json, rewritten to read the store's time
INPUTS = "_INPUTS.json"  # in a stage folder: what the stage reads (gc keeps it while the stage may resume)
LEASE_TTL_S = 60.0  # a dead owner blocks its key this long at most
TTL_ENV = "DREAMCORE_LEASE_TTL_S"  # shorter leases (tests, fast takeover) or longer ones (slow stores)
POLL_S = 1.0


class LeaseLost(RunFault):
    """This run no longer holds its stage's lease (another run took it over or committed): stop, write nothing."""


@dataclass(frozen=True)
class Lease:
    """The lease file of one generation: who holds it, and when the store last saw it renewed."""

    path: str
    generation: int
    owner: str
    ttl: float
    renewed_at: float  # the lease file's modification time, by the store's clock

    @property
    def expires_at(self) -> float:
        """Store time after which the lease is dead."""
        return self.renewed_at + self.ttl


def lease_folder(stage: str, key: str) -> str:
    return f"{LEASES}/{stage}/{key}"


def inputs_path(stage: str, key: str) -> str:
    """The stage folder's record of what the stage reads (written when its lease is taken)."""
    return f"{stage}/{key}/{INPUTS}"


def lease_ttl() -> float:
    """The lease duration in seconds: DREAMCORE_LEASE_TTL_S when set, else 60."""
    value = os.environ.get(TTL_ENV)
    return float(value) if value else LEASE_TTL_S


def new_owner() -> str:
    """host:pid:random: names the holder in log lines and tells two holders apart."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def create_exclusively(store: ArtifactStore, relative: str, data: bytes) -> bool:
    """Create the file only if it does not exist; True when this call created it. A full or read-only
    store raises StorageFault naming the lease and its stage."""
    try:
        return store.create_new(relative, data)
    except OSError as error:
        fault = write_fault(store.uri(relative), relative.removeprefix(f"{LEASES}/"), error)
        if fault is None:
            raise
        raise fault from error


def store_now(store: ArtifactStore, stage: str = "_clock") -> float:
    """The store's current time: a probe file `_leases/<stage>/_now.json` is rewritten and its modification
    time read back as the store reports it (S3: LastModified, whole seconds; local disk: the file's mtime).
    A store that cannot be written raises StorageFault naming `stage`."""
    folder = f"{LEASES}/{stage}"
    probe = store.path(f"{folder}/{CLOCK_PROBE}")
    try:  # only its time is read, so a plain overwrite will do (no temporary file)
        if store.is_local:
            store.fs.makedirs(os.path.dirname(probe), exist_ok=True)
        store.fs.pipe_file(probe, b"{}")
    except OSError as error:
        fault = write_fault(store.uri(f"{folder}/{CLOCK_PROBE}"), f"{stage}/{CLOCK_PROBE}", error)
        if fault is None:
            raise
        raise fault from error
    stamp = _modified_times(store, folder).get(CLOCK_PROBE)
    return stamp or time.time()  # a store that keeps no modification times: this host's clock (see the README)


def _modified_times(store: ArtifactStore, folder: str) -> dict[str, float]:
    """File name -> modification time (store clock) of the files directly in `folder` (one listing)."""
    store.invalidate()
    try:
        entries = store.fs.ls(store.path(folder), detail=True)
    except FileNotFoundError:
        return {}
    return {entry["name"].rstrip("/").rsplit("/", 1)[-1]: modified_time(entry)
            for entry in entries if entry.get("type") != "directory"}


def newest_lease(store: ArtifactStore, stage: str, key: str) -> Lease | None:
    """The newest generation's lease, or None when nobody holds or held one."""
    times = _modified_times(store, lease_folder(stage, key))
    generations = sorted(int(name[:-5]) for name in times if name.endswith(".json") and name[:-5].isdigit())
    if not generations:
        return None
    name = f"{generations[-1]}.json"
    path = f"{lease_folder(stage, key)}/{name}"
    try:
        record = store.read_json(path)
    except (FileNotFoundError, json.JSONDecodeError):  # released or being renewed right now: look again
        return None
    ttl = float(record.get("ttl_s", LEASE_TTL_S))
    # a store that keeps no modification times: the holder's own clock, as written in the lease
    renewed_at = times[name] or float(record.get("expires_at", 0)) - ttl
    return Lease(path, generations[-1], record["owner"], ttl, renewed_at)


def _record(owner: str, generation: int, ttl: float, clock: Callable[[], float]) -> bytes:
    # expires_at is the holder's own belief, for people reading the file; expiry is judged by the store's clock
    return json.dumps({"owner": owner, "generation": generation, "ttl_s": ttl,
                       "expires_at": clock() + ttl}).encode()


class HeldLease:
    """A lease this process holds: `check()` before writing, renewed in the background, released at the end."""

    def __init__(self, store: ArtifactStore, stage: str, key: str, lease: Lease,
                 committed_by: Callable[[], str | bool | None], clock: Callable[[], float]) -> None:
        self.store, self.stage, self.key, self.lease = store, stage, key, lease
        self.committed_by, self.clock = committed_by, clock
        self.lost: str | None = None

    @property
    def owner(self) -> str:
        return self.lease.owner

    def _lost(self, to: str) -> LeaseLost:
        return LeaseLost(f"lost the lease on {self.stage}/{self.key} to {to}; stopping without writing")

    def check(self) -> None:
        """Raise LeaseLost unless this run still holds the newest, unexpired generation and nobody committed."""
        now = store_now(self.store, self.stage)
        current = newest_lease(self.store, self.stage, self.key)
        winner = self.committed_by()  # after the lease: a holder paused in between still names the committer
        if winner:
            raise self._lost(winner if isinstance(winner, str) else "the run that committed it")
        if current is None or (current.generation, current.owner) != (self.lease.generation, self.owner):
            raise self._lost(current.owner if current is not None else "nobody (the lease was removed)")
        if current.expires_at <= now:
            raise self._lost(f"nobody yet (not renewed for {now - current.renewed_at:.1f} s by the store's clock, "
                             f"ttl {current.ttl:g} s)")

    def renew(self) -> bool:
        """Rewrite the lease (a new modification time) if it is still ours; False once it is lost."""
        try:
            self.check()
        except LeaseLost as lost:
            self.lost = str(lost)
            logger.warning("%s", lost)
            return False
        self.store.write_bytes(self.lease.path, _record(self.owner, self.lease.generation, self.lease.ttl, self.clock))
        return True

    def release(self) -> None:
        """Remove the lease if it is still ours (a holder that lost it leaves the new owner's alone)."""
        try:
            current = newest_lease(self.store, self.stage, self.key)
            if current is not None and (current.generation, current.owner) == (self.lease.generation, self.owner):
                self.store.remove(lease_folder(self.stage, self.key))
        except Exception as error:  # noqa: BLE001 - a lost store must not hide the stage's own error
            logger.warning("could not release the lease %s (%s); it expires %g s after its last renewal",
                           self.lease.path, error, self.lease.ttl)


class _Renewal:
    """Renews a held lease every ttl/3 until stopped or lost."""

    def __init__(self, held: HeldLease) -> None:
        self.held = held
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"lease-renewal-{held.lease.path}", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.wait(self.held.lease.ttl / 3):
            try:
                if not self.held.renew():
                    return
            except Exception as error:  # noqa: BLE001 - the store went away: the lease lapses, another may take over
                logger.warning("could not renew lease %s (%s)", self.held.lease.path, error)

    def close(self, wait: bool = True) -> None:
        """Stop renewing; `wait` for a renewal in flight (not when the store is gone: it would only time out)."""
        self.stop.set()
        if wait:
            self.thread.join()


@contextmanager
def stage_lease(store: ArtifactStore, stage: str, key: str, is_committed: Callable[[], str | bool | None], *,
                ttl: float | None = None, poll: float = POLL_S, reads: Iterable[str] = (),
                clock: Callable[[], float] = time.time) -> Iterator[HeldLease | None]:
    """Hold the lease of `stage`/`key` for the body; yields None when another run committed the key
    meanwhile (nothing held: reuse its result), the HeldLease when this process should compute.

    `is_committed()` is truthy once the key is committed (a string names the run that committed it).
    `reads` (URIs or root-relative paths of what the stage reads) go to the stage folder's _INPUTS.json,
    so gc keeps them while the stage runs or may resume. `clock` is this host's clock; it is only
    written into the lease for people to read (tests inject a skewed one): expiry is the store's clock.
    Waits while a live owner holds the lease; takes over past a dead owner's expiry. A lost storage
    endpoint inside the body becomes one StorageUnreachable line naming the URL.
    """
    ttl = lease_ttl() if ttl is None else ttl
    owner = new_owner()
    announced = None
    while True:
        if is_committed():
            if announced:
                logger.info("%s/%s: committed by %s while this run waited; reusing it", stage, key, announced)
            yield None
            return
        now = store_now(store, stage)  # before the listing: a renewal seen after it is never judged stale
        current = newest_lease(store, stage, key)
        if current is not None and current.owner == owner:  # our create was retried after its answer was lost
            path, generation = current.path, current.generation
            break
        generation = 0 if current is None else current.generation + 1
        if current is not None and current.expires_at > now:
            if announced != current.owner:
                logger.info("%s/%s is being computed by %s; waiting for its commit", stage, key, current.owner)
                announced = current.owner
            time.sleep(poll)
            continue
        path = f"{lease_folder(stage, key)}/{generation}.json"
        if create_exclusively(store, path, _record(owner, generation, ttl, clock)):
            if current is not None:
                logger.warning("%s/%s: the lease of %s expired %.1f s ago by the store's clock (owner gone); "
                               "taking over and resuming", stage, key, current.owner, now - current.expires_at)
            break
    held = HeldLease(store, stage, key, Lease(path, generation, owner, ttl, now), is_committed, clock)
    renewal = None
    reachable = True
    try:
        reads = sorted({r for r in reads if r})
        if reads:
            store.write_json(inputs_path(stage, key), {"reads": reads, "owner": owner})
        renewal = _Renewal(held)
        yield None if is_committed() else held  # committed between our look and our lease: reuse it
    except Exception as error:
        fault = unreachable_fault(stage, store.uri(f"{stage}/{key}"), error)
        if fault is None:
            raise
        reachable = False
        raise fault from error
    finally:
        if renewal is not None:
            renewal.close(wait=reachable)
        if reachable:
            held.release()
        else:  # releasing would only retry against the lost endpoint: the lease lapses by itself
            logger.warning("%s/%s: the lease %s is left to expire (%g s after its last renewal)",
                           stage, key, held.lease.path, ttl)
