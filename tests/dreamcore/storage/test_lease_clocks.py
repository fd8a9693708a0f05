"""Two lease clients whose clocks are 10 minutes apart share a lease correctly on local disk and on S3
(moto): expiry is judged by the store's clock (the lease file's modification time against a probe's),
so the fast host neither takes over a live lease nor waits past the real expiry, and the slow host
learns that its lapsed lease is gone."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from dreamcore.storage import ArtifactStore
from dreamcore.storage.leases import LeaseLost, lease_folder, newest_lease, stage_lease, store_now

TTL = 3.0  # S3's LastModified has whole seconds: a renewal every second stays well inside 3 s
SKEW = 300.0


def _label(storage_root: str) -> str:
    return "s3" if storage_root.startswith("s3://") else "local"


def _not_committed() -> None:
    return None


class _Freezable(ArtifactStore):
    """A store client that stops reaching the store when frozen: its lease renewals fail, as a paused or
    cut-off host's would."""

    frozen = False

    def write_bytes(self, relative: str, data: bytes) -> str:
        if self.frozen:
            raise OSError(f"{relative}: this host is frozen")
        return super().write_bytes(relative, data)


def test_hosts_with_clocks_ten_minutes_apart_share_a_lease(storage_root, caplog) -> None:
    key = "k-skew"
    behind = _Freezable(storage_root)  # this host's clock is 5 minutes slow
    ahead = ArtifactStore(storage_root)  # this one's is 5 minutes fast
    holding, released = threading.Event(), threading.Event()
    seen: dict = {}

    def slow_host() -> None:
        with stage_lease(behind, "demo", key, _not_committed, ttl=TTL, poll=0.2,
                         clock=lambda: time.time() - SKEW) as held:
            seen["slow"] = held
            holding.set()
            released.wait(60)
            try:
                held.check()
            except LeaseLost as lost:
                seen["slow_lost"] = str(lost)

    def fast_host() -> None:
        with stage_lease(ahead, "demo", key, _not_committed, ttl=TTL, poll=0.2,
                         clock=lambda: time.time() + SKEW) as held:
            seen["fast"] = held
            seen["fast_at"] = time.monotonic()
            seen["fast_lease"] = newest_lease(ahead, "demo", key)

    slow = threading.Thread(target=slow_host)
    slow.start()
    assert holding.wait(30)
    record = behind.read_json(f"{lease_folder('demo', key)}/0.json")
    # the old rule (the record's expiry against the reader's own clock) would have taken this lease over at once
    assert record["expires_at"] < time.time() + SKEW
    fast = threading.Thread(target=fast_host)
    with caplog.at_level(logging.INFO, logger="dreamcore.storage.leases"):
        fast.start()
        time.sleep(3 * TTL)  # the slow host renews: its lease stays live by the store's clock
        assert "fast" not in seen and "is being computed by" in caplog.text
        behind.frozen = True  # the slow host stops renewing (frozen, cut off)
        frozen_at = time.monotonic()
        last_renewal = newest_lease(ahead, "demo", key)
        fast.join(30)
    assert "fast" in seen, "the fast host never took over the lapsed lease"
    taken = seen["fast_lease"]
    assert (taken.generation, taken.owner) == (1, seen["fast"].owner)
    # taken over within a poll (+ S3's whole-second times) of the expiry by the store's clock, not 5 minutes early
    late_by = taken.renewed_at - last_renewal.expires_at
    assert -1.0 <= late_by <= 2.5, late_by
    waited = seen["fast_at"] - frozen_at
    assert waited <= TTL + 3.5, waited
    released.set()
    slow.join(30)
    assert seen["slow_lost"] == (f"lost the lease on demo/{key} to nobody (the lease was removed); "
                                 "stopping without writing")  # the fast host finished and released it
    print(f"\n[{_label(storage_root)}] skew {2 * SKEW:.0f} s: takeover {late_by:+.2f} s after the store-clock "
          f"expiry, {waited:.2f} s after the holder froze (ttl {TTL:g} s)")


def test_a_slow_host_takes_over_a_dead_fast_hosts_lease_at_its_expiry(storage_root) -> None:
    """The fast host dies holding the lease; the slow host (10 minutes behind it) takes over a ttl after the
    last renewal by the store's clock, not 10 minutes later; the fast host, woken up, has lost it."""
    fast = _Freezable(storage_root)
    slow = ArtifactStore(storage_root)
    with stage_lease(fast, "demo", "k-lapsed", _not_committed, ttl=TTL, clock=lambda: time.time() + SKEW) as dead:
        dead.check()  # live: nothing raised
        fast.frozen = True  # dies (frozen): no more renewals
        frozen_at = time.monotonic()
        last_renewal = newest_lease(slow, "demo", "k-lapsed")
        # the old rule (its record's expiry against the slow host's clock) would have waited 10 more minutes
        assert fast.read_json(dead.lease.path)["expires_at"] - (time.time() - SKEW) > 2 * SKEW - 1
        with stage_lease(slow, "demo", "k-lapsed", _not_committed, ttl=TTL, poll=0.2,
                         clock=lambda: time.time() - SKEW) as taker:
            waited = time.monotonic() - frozen_at
            late_by = taker.lease.renewed_at - last_renewal.expires_at
            fast.frozen = False  # wakes up
            with pytest.raises(LeaseLost) as lost:
                dead.check()
            assert str(lost.value) == (f"lost the lease on demo/k-lapsed to {taker.owner}; "
                                       "stopping without writing")
            taker.check()  # the new owner holds it
    assert waited <= TTL + 3.5 and -1.0 <= late_by <= 2.5, (waited, late_by)
    print(f"\n[{_label(storage_root)}] dead fast host: the slow host took over {waited:.2f} s after the "
          f"freeze, {late_by:+.2f} s after the store-clock expiry (ttl {TTL:g} s)")


def test_the_store_clock_is_the_probes_modification_time(storage_root) -> None:
    store = ArtifactStore(storage_root)
    before = time.time()
    now = store_now(store)
    assert before - 1.5 <= now <= time.time() + 0.5  # moto and the local disk share this host's clock
