"""The one thread that writes the database.

Every write in the gateway is a job on this thread's queue. Readings from
many callers are committed together (group commit): while one transaction
commits, new readings queue up and join the next, up to `max_batch`. A
caller's future resolves only after its transaction has committed, which is
what makes an acknowledged reading durable.

When the disk refuses a write (SQLITE_FULL or an I/O error), the batch stays
at the head of the queue and is retried every `retry_s`; callers keep
queueing up to `queue_max` readings, past which new readings are refused
(`BacklogFull`) rather than held in memory without bound. When a retry
succeeds, the outage is recorded as two events in that same transaction.
"""

from __future__ import annotations

import bisect
import collections
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TypeVar

import apsw

from edge import ids
from edge.models import Reading, now_ms
from edge.settings import StoreSettings, WriterSettings
from edge.store import _catalog, _events, _points, _readings
from edge.store._connections import open_connection

log = logging.getLogger(__name__)

T = TypeVar("T")

# Commit latency histogram bounds, in seconds: an SD card's fsync sits in the 5-50 ms band.
COMMIT_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
# A retried write caught in a stop gives up after this long; its readings were never acknowledged.
ABANDON_AFTER_S: Final = 1.0


class StoreClosed(RuntimeError):
    """The store is closing or closed; nothing more is accepted."""


class BacklogFull(RuntimeError):
    """Too many readings wait uncommitted (the disk is refusing writes); this batch is refused."""


class UnknownPoint(ValueError):
    """A reading names a point the store does not have."""


@dataclass
class WriterStats:
    """Counters the writer keeps for /metrics and the UI."""

    readings_written: int = 0
    transactions: int = 0
    commit_seconds_sum: float = 0.0
    commit_buckets: list[int] = field(default_factory=lambda: [0] * (len(COMMIT_BUCKETS) + 1))
    readings_refused: int = 0
    write_failures: int = 0
    disk_full_since_ms: int | None = None

    def observe_commit(self, seconds: float) -> None:
        self.transactions += 1
        self.commit_seconds_sum += seconds
        self.commit_buckets[bisect.bisect_left(COMMIT_BUCKETS, seconds)] += 1


class _ReadingsJob:
    __slots__ = ("also", "future", "readings")

    def __init__(
        self, readings: Sequence[Reading], also: Callable[[apsw.Connection], None] | None
    ) -> None:
        self.readings = readings
        self.also = also  # more writes that must commit with these readings, or not at all
        self.future: Future[range] = Future()


class _CallJob:
    __slots__ = ("fn", "future")

    def __init__(self, fn: Callable[[apsw.Connection], Any]) -> None:
        self.fn = fn
        self.future: Future[Any] = Future()


class Writer:
    """Owns the write connection and the thread that serves the write queue."""

    def __init__(
        self, path: Path, store: StoreSettings, writer: WriterSettings, system_org: str
    ) -> None:
        self._settings = writer
        self.system_org = system_org
        self._conn = open_connection(path, store, writer=True)
        self._jobs: collections.deque[_ReadingsJob | _CallJob] = collections.deque()
        self._cond = threading.Condition()
        self._queued = 0
        self._closing = False
        self._abandon = False
        self._outage_error = ""
        self._next_seq = _readings.next_seq(self._conn)
        self.known_points: set[int] = _points.live_point_ids(self._conn)
        self.stats = WriterStats()
        # Called with each commit's readings (alarm rules evaluate them as they arrive).
        self.listeners: list[Callable[[Sequence[Reading]], None]] = []
        self._thread = threading.Thread(target=self._run, name="edge-store-writer")
        self._thread.start()

    @property
    def next_seq(self) -> int:
        """The sequence the next committed reading will get."""
        return self._next_seq

    @property
    def queued_readings(self) -> int:
        """Readings accepted but not yet committed."""
        return self._queued

    def submit_readings(
        self,
        readings: Sequence[Reading],
        also: Callable[[apsw.Connection], None] | None = None,
    ) -> Future[range]:
        """Queue readings; the future gives their sequence numbers once committed.

        `also` runs in the same transaction, so its writes and the readings commit together.
        """
        known = self.known_points
        for reading in readings:
            if reading.point_id not in known:
                raise UnknownPoint(f"no point with id {reading.point_id}")
        job = _ReadingsJob(readings, also)
        with self._cond:
            if self._closing:
                raise StoreClosed("the store is closing")
            if self._queued + len(readings) > self._settings.queue_max:
                self.stats.readings_refused += len(readings)
                raise BacklogFull(
                    f"{self._queued} readings already wait for the disk "
                    f"(limit {self._settings.queue_max})"
                )
            self._queued += len(readings)
            self._jobs.append(job)
            self._cond.notify()
        return job.future

    def submit(self, fn: Callable[[apsw.Connection], T]) -> Future[T]:
        """Queue a function to run in its own write transaction."""
        job = _CallJob(fn)
        with self._cond:
            if self._closing:
                raise StoreClosed("the store is closing")
            self._jobs.append(job)
            self._cond.notify()
        return job.future

    def close(self, timeout: float) -> bool:
        """Commit what is queued, then close; False if the disk kept refusing until `timeout`."""
        with self._cond:
            self._closing = True
            self._cond.notify()
        self._thread.join(timeout)
        flushed = not self._thread.is_alive()
        if not flushed:
            self._abandon = True
            self._thread.join(ABANDON_AFTER_S + self._settings.retry_s)
        if not self._thread.is_alive():
            self._conn.close()
        return flushed

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._jobs and not self._closing:
                    self._cond.wait()
                if not self._jobs:
                    return
                batch = self._take_batch()
            self._execute_with_retry(batch)

    def _take_batch(self) -> list[_ReadingsJob | _CallJob]:
        first = self._jobs.popleft()
        if isinstance(first, _CallJob):
            return [first]
        batch: list[_ReadingsJob | _CallJob] = [first]
        size = len(first.readings)
        while (
            self._jobs
            and isinstance(self._jobs[0], _ReadingsJob)
            and size + len(self._jobs[0].readings) <= self._settings.max_batch
        ):
            job = self._jobs.popleft()
            size += len(job.readings)
            batch.append(job)
        return batch

    def _execute_with_retry(self, batch: list[_ReadingsJob | _CallJob]) -> None:
        while True:
            try:
                results = self._transaction(batch)
            except (apsw.FullError, apsw.IOError) as error:
                self._disk_refused(error)
                if self._abandon:
                    self._resolve_failed(
                        batch, StoreClosed("the store closed while the disk was full")
                    )
                    self._fail_queue()
                    return
                time.sleep(self._settings.retry_s)
                continue
            except (_catalog.NotFound, _catalog.Conflict, _catalog.Refused) as error:
                # A refusal of the caller's request, not a failure of the store.
                self._resolve_failed(batch, error)
                return
            except Exception as error:  # the caller gets the error; the writer carries on
                self.stats.write_failures += 1
                log.exception("write transaction failed")
                self._resolve_failed(batch, error)
                return
            self._resolve(batch, results)
            return

    def _transaction(self, batch: list[_ReadingsJob | _CallJob]) -> list[Any]:
        conn = self._conn
        started = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        try:
            if isinstance(batch[0], _CallJob):
                results = [batch[0].fn(conn)]
                written = 0
            else:
                results, written = self._insert_readings(batch)
            recovering = self.stats.disk_full_since_ms is not None
            if recovering:
                _events.insert_events(conn, self._outage_events())
            conn.execute("COMMIT")
        except BaseException:
            if not conn.get_autocommit():
                conn.execute("ROLLBACK")
            raise
        self.stats.observe_commit(time.perf_counter() - started)
        self.stats.readings_written += written
        if recovering:
            self.stats.disk_full_since_ms = None
            log.info("the disk accepts writes again")
        if written and results:
            self._next_seq = results[-1].stop
        return results

    def _insert_readings(self, batch: Iterable[Any]) -> tuple[list[range], int]:
        seq = first = self._next_seq
        rows = []
        ranges = []
        for job in batch:
            start = seq
            for r in job.readings:
                rows.append((r.point_id, r.ts_ms, seq, r.value, r.quality, r.correction))
                seq += 1
            ranges.append(range(start, seq))
        if rows:
            _readings.insert_readings(self._conn, rows, seq - 1)
        for job in batch:
            if job.also is not None:
                job.also(self._conn)
        return ranges, seq - first

    def _resolve(self, batch: list[_ReadingsJob | _CallJob], results: list[Any]) -> None:
        released = sum(len(job.readings) for job in batch if isinstance(job, _ReadingsJob))
        with self._cond:
            self._queued -= released
        if released and self.listeners:
            committed = [r for job in batch if isinstance(job, _ReadingsJob) for r in job.readings]
            for listener in self.listeners:
                try:
                    listener(committed)
                except Exception:  # a listener's bug must not stop the writer
                    log.exception("commit listener failed")
        for job, result in zip(batch, results, strict=True):
            job.future.set_result(result)

    def _fail_queue(self) -> None:
        with self._cond:
            rest = list(self._jobs)
            self._jobs.clear()
        self._resolve_failed(rest, StoreClosed("the store closed while the disk was full"))

    def _resolve_failed(self, jobs: list[_ReadingsJob | _CallJob], error: BaseException) -> None:
        released = sum(len(job.readings) for job in jobs if isinstance(job, _ReadingsJob))
        with self._cond:
            self._queued -= released
        for job in jobs:
            job.future.set_exception(error)

    def _disk_refused(self, error: Exception) -> None:
        self.stats.write_failures += 1
        if self.stats.disk_full_since_ms is not None:
            log.debug("the disk still refuses writes: %s", error)
            return
        self.stats.disk_full_since_ms = now_ms()
        self._outage_error = str(error)
        log.error("the disk refuses writes (%s); readings wait in memory", error)

    def _outage_events(self) -> list[tuple[Any, ...]]:
        """The outage, as two events written by the first transaction the disk accepts."""
        since = self.stats.disk_full_since_ms
        assert since is not None
        ts = now_ms()
        org = self.system_org
        return [
            _events.event_row(
                ids.new_id("evt"),
                org,
                "store.disk_full",
                "critical",
                f"The disk refused writes ({self._outage_error}); readings waited in memory.",
                since,
            ),
            _events.event_row(
                ids.new_id("evt"),
                org,
                "store.disk_recovered",
                "info",
                f"The disk accepts writes again after {(ts - since) / 1000:.0f} s.",
                ts,
            ),
        ]
