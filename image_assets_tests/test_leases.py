"""Leases over blob stores: create-if-absent on every backend (S3 on the moto server), one
holder at a time whatever the order of acquire, renew, release and expiry (hypothesis),
and real races between threads and processes."""

from __future__ import annotations

import multiprocessing
import threading
import uuid

import boto3
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from image_assets.storage import LocalBlobStore
from image_assets.storage.leases import Heartbeat, Leases, LeaseTimeout, held
from image_assets.storage.memory import MemoryBlobStore
from image_assets.storage.s3 import S3BlobStore


@pytest.fixture(params=["local", "memory", "s3"])
def store(request, tmp_path):
    if request.param == "local":
        return LocalBlobStore(tmp_path / "raw")
    if request.param == "memory":
        return MemoryBlobStore()
    request.getfixturevalue("aws_env")
    bucket = f"leases-{uuid.uuid4().hex[:8]}"
    boto3.client("s3").create_bucket(Bucket=bucket)
    return S3BlobStore(lambda: boto3.client("s3"), bucket, "raw")


def test_put_if_absent_writes_once_and_never_overwrites(store):
    assert store.put_if_absent("leases/a/1.json", b"first") is True
    assert store.put_if_absent("leases/a/1.json", b"second") is False
    assert store.get("leases/a/1.json") == b"first"
    assert list(store.list("leases/a")) == ["leases/a/1.json"]  # no temp file left behind


def test_of_racing_threads_exactly_one_creates_the_key(store):
    wins: list[int] = []
    barrier = threading.Barrier(8)

    def race(n: int) -> None:
        barrier.wait()
        if store.put_if_absent("leases/race/1.json", str(n).encode()):
            wins.append(n)

    threads = [threading.Thread(target=race, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(wins) == 1
    assert store.get("leases/race/1.json") == str(wins[0]).encode()


def _acquire_in_process(root: str, owner: str, start, results) -> None:
    start.wait()
    lease = Leases(LocalBlobStore(root), 60).acquire("upload/u1", owner)
    results.put((owner, lease is not None))


def test_of_racing_processes_exactly_one_takes_the_lease(tmp_path):
    context = multiprocessing.get_context("spawn")
    start, results = context.Event(), context.Queue()
    procs = [
        context.Process(target=_acquire_in_process, args=(str(tmp_path), f"p{n}", start, results))
        for n in range(6)
    ]
    for proc in procs:
        proc.start()
    start.set()
    outcomes = dict(results.get(timeout=60) for _ in procs)
    for proc in procs:
        proc.join(timeout=30)
    winners = [owner for owner, won in outcomes.items() if won]
    assert len(winners) == 1
    assert Leases(LocalBlobStore(tmp_path), 60).holder("upload/u1").owner == winners[0]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class LeaseModel(RuleBasedStateMachine):
    """Owners take, renew, give up and forget leases while time passes: at every step at
    most one owner holds the lease, and a holder is only displaced after expiry."""

    OWNERS = ("a", "b", "c")
    TTL = 10.0

    def __init__(self) -> None:
        super().__init__()
        self.clock = Clock()
        self.leases = Leases(MemoryBlobStore(), self.TTL, clock=self.clock)
        self.mine: dict[str, object] = {}  # owner -> the lease it believes it has

    @rule(owner=st.sampled_from(OWNERS))
    def acquire(self, owner):
        before = self.leases.holder("work")
        lease = self.leases.acquire("work", owner)
        if before is not None and before.owner != owner:
            assert lease is None  # a live lease of another owner is never taken
        if before is None:
            assert lease is not None  # a free or expired lease is always taken
        if lease is not None:
            self.mine[owner] = lease

    @rule(owner=st.sampled_from(OWNERS))
    def renew(self, owner):
        lease = self.mine.get(owner)
        if lease is None:
            return
        held_before = self.leases.holds(lease)
        renewed = self.leases.renew(lease)
        if renewed is None:
            assert not held_before or self.leases.current("work").owner != owner
            self.mine.pop(owner)
        else:
            self.mine[owner] = renewed

    @rule(owner=st.sampled_from(OWNERS))
    def release(self, owner):
        lease = self.mine.pop(owner, None)
        if lease is not None:
            self.leases.release(lease)
            assert all(not self.leases.holds(lease) for lease in [lease])

    @rule(seconds=st.floats(min_value=0.1, max_value=15.0))
    def wait(self, seconds):
        self.clock.now += seconds

    @precondition(lambda self: bool(self.mine))
    @rule()
    def everyone_asks(self):
        holders = [o for o, lease in self.mine.items() if self.leases.holds(lease)]
        assert len(holders) <= 1

    @invariant()
    def at_most_one_holder(self):
        holders = [o for o, lease in self.mine.items() if self.leases.holds(lease)]
        assert len(holders) <= 1
        live = self.leases.holder("work")
        if holders:
            assert live is not None and live.owner == holders[0]


TestLeaseModel = LeaseModel.TestCase
TestLeaseModel.settings = settings(max_examples=200, stateful_step_count=40, deadline=None)


def test_held_waits_for_the_holder_then_times_out_naming_it(tmp_path):
    leases = Leases(LocalBlobStore(tmp_path), 30)
    order: list[str] = []
    with held(leases, "vendor/bulk", "first run", wait_seconds=5):
        waiter = threading.Thread(target=lambda: _hold_then_note(leases, order), name="second run")
        waiter.start()
        threading.Event().wait(0.5)
        order.append("first done")
    waiter.join(timeout=30)
    assert order == ["first done", "second in"]  # the second waited for the first

    with (
        held(leases, "vendor/bulk", "first run", wait_seconds=5),
        pytest.raises(LeaseTimeout, match="held by first run"),
        held(leases, "vendor/bulk", "third run", wait_seconds=0.5, poll_seconds=0.1),
    ):
        pass


def _hold_then_note(leases: Leases, order: list[str]) -> None:
    with held(leases, "vendor/bulk", "second run", wait_seconds=20, poll_seconds=0.1):
        order.append("second in")


def test_a_heartbeat_keeps_a_lease_past_its_ttl(tmp_path):
    leases = Leases(LocalBlobStore(tmp_path), 0.6)
    with held(leases, "upload/u2", "worker", wait_seconds=1):
        threading.Event().wait(1.5)  # well past the TTL: renewed every 0.2 s
        assert leases.acquire("upload/u2", "thief") is None
    assert leases.acquire("upload/u2", "next") is not None  # given up at the end


class _SlowRenewals(MemoryBlobStore):
    """Renewals (puts of an existing lease) that take a while: the window in which the
    work can finish and clear its lease while a renewal is on its way."""

    def __init__(self):
        super().__init__()
        self.renewing = threading.Event()

    def put(self, key, data, content_type=None):
        if key.startswith("leases/") and self.exists(key):
            self.renewing.set()
            threading.Event().wait(0.3)
        super().put(key, data, content_type)


def test_a_renewal_in_flight_never_writes_back_a_cleared_lease():
    store = _SlowRenewals()
    leases = Leases(store, 0.3)  # a beat every 0.1 s
    lease = leases.acquire("upload/u3", "worker")
    assert lease is not None
    with Heartbeat(leases, {"upload/u3": lease}) as beat:
        assert store.renewing.wait(5)
        beat.drop("upload/u3")  # the work is done, while a renewal is being written
        leases.clear("upload/u3")
    assert list(store.list("leases/")) == []
