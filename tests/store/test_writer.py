"""The writer thread: group commit, bounds, failures, a full disk, and a clean close."""

from __future__ import annotations

import contextlib
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from edge import settings as settings_mod
from edge.models import Reading
from edge.store import BacklogFull, Store, StoreClosed
from tests.conftest import fill
from tests.store.helpers import make_points


@contextlib.contextmanager
def writer_held(store: Store):
    """Keep the writer busy inside a transaction until the block ends."""
    entered, release = threading.Event(), threading.Event()

    def hold(conn):
        entered.set()
        release.wait(10)

    future = store._writer.submit(hold)
    assert entered.wait(5)
    try:
        yield
    finally:
        release.set()
        future.result(5)


def test_readings_queued_during_a_commit_share_the_next_transaction(store):
    points = make_points(store, 5)
    with ThreadPoolExecutor(5) as pool:
        with writer_held(store):
            before = store._writer.stats.transactions
            futures = [
                pool.submit(store.append_readings, [Reading(p.id, t, 1.0) for t in range(100)])
                for p in points
            ]
            while store._writer.queued_readings < 500:
                time.sleep(0.005)
            assert not any(f.done() for f in futures), "acknowledged before commit"
        ranges = [f.result(5) for f in futures]
    assert store._writer.stats.transactions - before == 2  # the held one, then all five at once
    assert sorted(s for r in ranges for s in r) == list(
        range(ranges[0].start, ranges[0].start + 500)
    )


def test_a_transaction_holds_at_most_max_batch_readings(tmp_path):
    settings = settings_mod.load(None, {}, data_dir=str(tmp_path), writer={"max_batch": 10})
    store = Store.open(settings)
    try:
        (point,) = make_points(store, 1)
        with ThreadPoolExecutor(3) as pool:
            with writer_held(store):
                before = store._writer.stats.transactions
                futures = [
                    pool.submit(
                        store.append_readings,
                        [Reading(point.id, k * 10 + t, 0.0) for t in range(6)],
                    )
                    for k in range(3)
                ]
                while store._writer.queued_readings < 18:
                    time.sleep(0.005)
            for f in futures:
                f.result(5)
        assert store._writer.stats.transactions - before == 4
    finally:
        store.close()


def test_a_failing_write_reaches_its_caller_and_the_writer_carries_on(store):
    (point,) = make_points(store, 1)

    def broken(conn):
        conn.execute("INSERT INTO no_such_table VALUES (1)")

    with pytest.raises(Exception, match="no_such_table"):
        store._write(broken)
    assert store.append_readings([Reading(point.id, 0, 1.0)])


def test_close_commits_everything_queued(settings):
    store = Store.open(settings)
    (point,) = make_points(store, 1)
    with ThreadPoolExecutor(4) as pool:
        with writer_held(store):
            futures = [
                pool.submit(
                    store.append_readings, [Reading(point.id, k * 100 + t, 1.0) for t in range(50)]
                )
                for k in range(4)
            ]
            while store._writer.queued_readings < 200:
                time.sleep(0.005)
            closer = pool.submit(store.close, 10)
        assert closer.result(10) is True
        assert all(len(f.result(5)) == 50 for f in futures)
    with pytest.raises(StoreClosed):
        store.append_readings([Reading(point.id, 10**9, 1.0)])
    reopened = Store.open(settings)
    try:
        assert len(reopened.outbox_batch(0, 1000)) == 200
    finally:
        reopened.close()


def test_a_full_disk_queues_readings_records_events_and_catches_up(small_disk):
    settings = settings_mod.load(
        None,
        {},
        data_dir=str(small_disk / "data"),
        writer={"retry_s": 0.05, "queue_max": 20_000},
    )
    store = Store.open(settings)
    try:
        points = make_points(store, 10)
        org = store.organization.id
        ballast = fill(small_disk)
        acked: list[range] = []
        t = 0
        with ThreadPoolExecutor(1) as pool:
            pending = []
            deadline = time.monotonic() + 20
            while not store.disk_full:
                assert time.monotonic() < deadline, "the disk never filled"
                batch = [Reading(p.id, t * 1000, float(t)) for p in points for _ in [0]]
                t += 1
                pending.append(pool.submit(store.append_readings, batch))
                time.sleep(0.001)
            assert not store.writable()
            # Past the bound, new readings are refused rather than held without limit.
            with pytest.raises(BacklogFull):
                store.append_readings([Reading(points[0].id, 0, 0.0)] * 20_001)
            queued_while_full = [Reading(p.id, 10**12, 7.0) for p in points]
            pending.append(pool.submit(store.append_readings, queued_while_full))
            time.sleep(0.3)
            assert store.disk_full, "the disk recovered on its own"
            ballast.unlink()
            for future in pending:
                acked.append(future.result(20))
        assert store.writable()
        assert not store.disk_full
        total = sum(len(r) for r in acked)
        assert len(store.outbox_batch(0, total + 10)) == total
        types = [e.type for e in store.events(org)]
        assert types[:2] == ["store.disk_recovered", "store.disk_full"]
        assert store.integrity_check() == ["ok"]
        assert store.latest(org, [points[0].id])[points[0].id].value == 7.0
    finally:
        store.close()
