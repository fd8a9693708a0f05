"""Stage leases: one process computes a stage key; others with the same key wait and reuse its commit.

A lease is a small JSON file `_leases/<stage>/<key>/<generation>.json` (owner, expiry) created
exclusively: on local disk a fully written temporary file is hard-linked to its name (atomic, fails
when it exists); on S3 a conditional PUT (If-None-Match: *, s3fs mode="create"). The holder renews
its expiry from a background thread while it computes. A waiter polls for the commit; when the
newest generation has expired (its owner died), the waiter creates the next generation, which only
one waiter can, and resumes the stage from what the dead owner left (every stage resumes from its
leftovers). Expiry is wall-clock time: machines sharing an S3 root need roughly synchronised clocks.
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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from dreamcore.storage.faults import write_fault
from dreamcore.storage.store import ArtifactStore

logger = logging.getLogger(__name__)

LEASES = "_leases"
LEASE_TTL_S = 60.0  # a dead owner blocks its key this long at most
POLL_S = 1.0


@dataclass(frozen=True)
class Lease:
    """The lease file of one generation and what it says."""

    path: str
    generation: int
    owner: str
    expires_at: float


def lease_folder(stage: str, key: str) -> str:
    return f"{LEASES}/{stage}/{key}"


def new_owner() -> str:
    """host:pid:random: names the holder in log lines and tells two holders apart."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def create_exclusively(store: ArtifactStore, relative: str, data: bytes) -> bool:
    """Create the file only if it does not exist; True when this call created it. A full or read-only
    store raises StorageFault naming the lease and its stage."""
    try:
        return _create_exclusively(store, relative, data)
    except OSError as error:
        fault = write_fault(store.uri(relative), relative.removeprefix(f"{LEASES}/"), error)
        if fault is None:
            raise
        raise fault from error


def _create_exclusively(store: ArtifactStore, relative: str, data: bytes) -> bool:
    target = store.path(relative)
    if store.is_local:
        store.fs.makedirs(os.path.dirname(target), exist_ok=True)
        temporary = f"{target}.tmp-{uuid.uuid4().hex}"
        try:
            with open(temporary, "wb") as stream:
                stream.write(data)
            os.link(temporary, target)  # atomic, and fails when the lease exists: readers never see half a file
            return True
        except FileExistsError:
            return False
        finally:
            if os.path.exists(temporary):
                os.unlink(temporary)
    try:
        store.fs.pipe_file(target, data, mode="create")
    except FileExistsError:
        return False
    store.invalidate()
    return True


def newest_lease(store: ArtifactStore, stage: str, key: str) -> Lease | None:
    """The newest generation's lease, or None when nobody holds or held one."""
    names = [path.rsplit("/", 1)[-1] for path in store.list(lease_folder(stage, key))]
    generations = sorted(int(name[:-5]) for name in names if name.endswith(".json") and name[:-5].isdigit())
    if not generations:
        return None
    path = f"{lease_folder(stage, key)}/{generations[-1]}.json"
    try:
        record = store.read_json(path)
    except (FileNotFoundError, json.JSONDecodeError):  # released or being renewed right now: look again
        return None
    return Lease(path, generations[-1], record["owner"], float(record["expires_at"]))


def _record(owner: str, ttl: float) -> bytes:
    return json.dumps({"owner": owner, "expires_at": time.time() + ttl, "ttl_s": ttl}).encode()


class _Renewal:
    """Pushes a held lease's expiry forward every ttl/3 until stopped."""

    def __init__(self, store: ArtifactStore, lease: Lease, ttl: float) -> None:
        self.store, self.lease, self.ttl = store, lease, ttl
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"lease-renewal-{lease.path}", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.wait(self.ttl / 3):
            try:
                self.store.write_bytes(self.lease.path, _record(self.lease.owner, self.ttl))
            except OSError as error:  # the store went away: the lease lapses, another run may take over
                logger.warning("could not renew lease %s (%s)", self.lease.path, error)

    def close(self) -> None:
        self.stop.set()
        self.thread.join()


@contextmanager
def stage_lease(store: ArtifactStore, stage: str, key: str, is_committed: Callable[[], bool], *,
                ttl: float = LEASE_TTL_S, poll: float = POLL_S) -> Iterator[bool]:
    """Hold the lease of `stage`/`key` for the body; yields False when another run committed the key
    meanwhile (nothing held: reuse its result), True when this process should compute.

    Waits while a live owner holds the lease; takes over past a dead owner's expiry.
    """
    owner = new_owner()
    announced = None
    while True:
        if is_committed():
            if announced:
                logger.info("%s/%s: committed by %s while this run waited; reusing it", stage, key, announced)
            yield False
            return
        current = newest_lease(store, stage, key)
        generation = 0 if current is None else current.generation + 1
        if current is not None and current.expires_at > time.time():
            if announced != current.owner:
                logger.info("%s/%s is being computed by %s; waiting for its commit", stage, key, current.owner)
                announced = current.owner
            time.sleep(poll)
            continue
        path = f"{lease_folder(stage, key)}/{generation}.json"
        if create_exclusively(store, path, _record(owner, ttl)):
            if current is not None:
                logger.warning("%s/%s: the lease of %s expired (owner gone); taking over and resuming",
                               stage, key, current.owner)
            break
    lease = Lease(path, generation, owner, time.time() + ttl)
    renewal = _Renewal(store, lease, ttl)
    try:
        yield not is_committed()  # committed between our look and our lease: reuse it
    finally:
        renewal.close()
        store.remove(lease_folder(stage, key))
