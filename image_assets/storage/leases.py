"""Leases: one holder at a time for work that several runs may race for (an upload, a
vendor partition), on any blob store that can create a key only if it is absent.

Many runs work at once in production (one ECS task or pod each), on the same
buckets. A lease is how one of them says "this upload is mine": a numbered key
``leases/{name}/{generation}`` holding its owner and expiry. The holder is the owner
of the highest generation, while it has not expired. Taking a lease creates the
next generation with create-if-absent (S3's ``If-None-Match: *``, a hard link on a
filesystem), so of two runs that race, exactly one wins; nothing else is needed from
the store, no lock server, no database.

A holder renews by rewriting its own generation (no one else writes that key) and
gives the lease up by writing an expiry in the past. A run killed with SIGKILL never
gives it up: its lease expires after ``ttl_seconds`` and the work can be taken over.
Expiry is by the clocks of the machines involved, so a holder that stalls longer
than the TTL can lose its lease while still working: :meth:`Leases.holds` lets it
check before it commits, and the work it guards must stay safe to redo (every
step here writes whole files under fixed keys, never appends).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from image_assets.layout import lease_generation, lease_key, lease_prefix
from image_assets.storage.base import BlobNotFound, BlobStore

Clock = Callable[[], float]


def new_owner(label: str = "") -> str:
    """An owner name unique to this process and call: host, pid and a random part (a
    label such as the Dagster run id makes it readable)."""
    parts = [label] if label else []
    parts += [socket.gethostname()[:40], str(os.getpid()), uuid.uuid4().hex[:8]]
    return ":".join(parts)


@dataclass(frozen=True)
class Lease:
    name: str
    generation: int
    owner: str
    expires_at: float

    def live(self, now: float) -> bool:
        return self.expires_at > now


class Leases:
    """Leases kept in ``store`` (the raw store: beside the manifests they guard)."""

    def __init__(self, store: BlobStore, ttl_seconds: float, clock: Clock = time.time):
        if ttl_seconds <= 0:
            raise ValueError(f"a lease needs a positive TTL, not {ttl_seconds}")
        self.store = store
        self.ttl_seconds = ttl_seconds
        self.clock = clock

    def current(self, name: str) -> Lease | None:
        """The highest generation of ``name`` (live or not), None when never taken."""
        generations = sorted(
            g for g in (lease_generation(k) for k in self.store.list(lease_prefix(name))) if g
        )
        for generation in reversed(generations):
            lease = self._read(name, generation)
            if lease is not None:
                return lease
        return None

    def holder(self, name: str) -> Lease | None:
        """The live lease of ``name``, if someone holds it."""
        lease = self.current(name)
        return lease if lease is not None and lease.live(self.clock()) else None

    def acquire(self, name: str, owner: str) -> Lease | None:
        """Take ``name`` for ``owner`` when it is free or expired; None when another owner
        holds it (or won the race for it just now). An owner that holds it already gets
        its lease renewed."""
        current = self.current(name)
        now = self.clock()
        if current is not None and current.live(now):
            return self.renew(current) if current.owner == owner else None
        generation = current.generation + 1 if current else 1
        lease = Lease(name, generation, owner, now + self.ttl_seconds)
        if self.store.put_if_absent(
            lease_key(name, generation), _encode(lease), "application/json"
        ):
            return lease
        return None

    def acquire_many(self, names: Iterable[str], owner: str) -> dict[str, Lease]:
        """The leases of ``names`` this owner could take (the others are held elsewhere)."""
        taken = {}
        for name in names:
            lease = self.acquire(name, owner)
            if lease is not None:
                taken[name] = lease
        return taken

    def holds(self, lease: Lease) -> bool:
        """Whether ``lease`` is still its name's live lease (not expired, not taken over)."""
        current = self.current(lease.name)
        return (
            current is not None
            and current.generation == lease.generation
            and current.owner == lease.owner
            and current.live(self.clock())
        )

    def renew(self, lease: Lease) -> Lease | None:
        """Push the expiry on; None when the lease was lost (expired and taken over)."""
        current = self.current(lease.name)
        if current is None or (current.generation, current.owner) != (
            lease.generation,
            lease.owner,
        ):
            return None
        renewed = Lease(lease.name, lease.generation, lease.owner, self.clock() + self.ttl_seconds)
        self.store.put(
            lease_key(lease.name, lease.generation), _encode(renewed), "application/json"
        )
        return renewed

    def release(self, lease: Lease) -> None:
        """Give the lease up (only if still held: a lost lease is someone else's now)."""
        if self.holds(lease):
            gone = Lease(lease.name, lease.generation, lease.owner, 0.0)
            self.store.put(
                lease_key(lease.name, lease.generation), _encode(gone), "application/json"
            )

    def clear(self, name: str) -> None:
        """Delete every generation of ``name`` (its work is done for good)."""
        for key in list(self.store.list(lease_prefix(name))):
            self.store.delete(key)

    def _read(self, name: str, generation: int) -> Lease | None:
        try:
            data = json.loads(self.store.get(lease_key(name, generation)))
        except (BlobNotFound, ValueError):
            return None
        return Lease(name, generation, str(data.get("owner", "")), float(data.get("expires_at", 0)))


def _encode(lease: Lease) -> bytes:
    return json.dumps({"owner": lease.owner, "expires_at": lease.expires_at}).encode()


class Heartbeat:
    """Renews a set of leases every third of their TTL from a thread, while work runs.

    ``lost`` names the leases that could not be renewed (taken over after a stall):
    the work must not commit their results."""

    def __init__(self, leases: Leases, held: dict[str, Lease]):
        self.leases = leases
        self.held = dict(held)
        self.lost: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="lease-heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.wait(self.leases.ttl_seconds / 3):
            with self._lock:
                names = list(self.held)
            for name in names:
                # renewed under the lock: once drop() returns, no renewal of that name is
                # in flight, so a lease cleared after its work is done is never written
                # back by a late renewal (what left expired lease files behind)
                with self._lock:
                    lease = self.held.get(name)
                    if lease is None:
                        continue
                    try:
                        renewed = self.leases.renew(lease)
                    except Exception:  # a store hiccup: the next beat tries again
                        continue
                    if renewed is None:
                        self.lost.add(name)
                        self.held.pop(name, None)
                    else:
                        self.held[name] = renewed

    def drop(self, name: str) -> Lease | None:
        """Stop renewing ``name`` (its work is done); its lease as last renewed. Waits
        for a renewal in flight, so none follows."""
        with self._lock:
            return self.held.pop(name, None)

    def still_held(self, name: str) -> bool:
        with self._lock:
            lease = self.held.get(name)
        return lease is not None and self.leases.holds(lease)


class LeaseTimeout(RuntimeError):
    """Another owner kept the lease for longer than the caller would wait."""


@contextlib.contextmanager
def held(
    leases: Leases,
    name: str,
    owner: str,
    wait_seconds: float,
    say: Callable[[str], None] = lambda line: None,
    poll_seconds: float = 1.0,
) -> Iterator[Lease]:
    """Hold ``name`` for the block: wait (up to ``wait_seconds``) while another owner has
    it, renew it while the block runs, give it up after. Raises :class:`LeaseTimeout`
    naming the holder when the wait runs out."""
    deadline = time.monotonic() + wait_seconds
    told: str | None = None  # the holder last named: each new one is named once
    while True:
        lease = leases.acquire(name, owner)
        if lease is not None:
            break
        holder = leases.holder(name)
        if time.monotonic() >= deadline:
            who = holder.owner if holder else "another run"
            raise LeaseTimeout(f"{name} is held by {who}; waited {wait_seconds:.0f} s")
        if holder is not None and holder.owner != told:
            say(f"{name} is held by {holder.owner}: waiting for it (up to {wait_seconds:.0f} s)")
            told = holder.owner
        time.sleep(poll_seconds)
    with Heartbeat(leases, {name: lease}) as beat:
        try:
            yield lease
        finally:
            last = beat.drop(name)
            if last is not None:
                leases.release(last)
