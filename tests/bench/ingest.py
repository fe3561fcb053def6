"""Ingest: readings/s through `Store.append_readings`, against raw apsw; acknowledgement latency.

- one producer appending 10,000-reading batches over 1,000 points;
- four producers appending 1,000-reading batches at once (group commit joins them);
- the baseline: apsw `executemany` into a plain rowid table (no index) in WAL mode
  with synchronous=FULL, one transaction per 10,000-row batch;
- the time `append_readings` takes to return for a producer of 100-reading batches
  (one every 10 ms) while another thread appends 10,000-reading batches flat out.
"""

from __future__ import annotations

import statistics
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Final

import apsw

from edge.models import Reading
from edge.store import Store
from tests.bench._common import Result, Sizes, add_points, at_least, open_store, quantile, series

POINTS: Final = 1_000
BATCH: Final = 10_000
THREADS: Final = 4
THREAD_BATCH: Final = 1_000
PROBE_BATCH: Final = 100
PROBE_PERIOD_S: Final = 0.010
TARGET_RATE: Final = 150_000


def _batches(point_ids: list[int], total: int, size: int) -> list[list[Reading]]:
    """`total` readings of the points, second after second, cut into batches of `size`."""
    seconds = size // len(point_ids)
    return [series(point_ids, s, seconds) for s in range(0, total // len(point_ids), seconds)]


def store_one_producer(sizes: Sizes) -> float:
    """Readings/s for one producer appending 10,000-reading batches."""
    with tempfile.TemporaryDirectory() as tmp, open_store(tmp) as store:
        batches = _batches(add_points(store, POINTS), sizes.ingest_readings, BATCH)
        started = time.perf_counter()
        for batch in batches:
            store.append_readings(batch)
        elapsed = time.perf_counter() - started
    return sum(map(len, batches)) / elapsed


def store_threads(sizes: Sizes) -> float:
    """Readings/s for four producers appending 1,000-reading batches concurrently."""

    def produce(store: Store, batches: list[list[Reading]]) -> None:
        for batch in batches:
            store.append_readings(batch)

    with tempfile.TemporaryDirectory() as tmp, open_store(tmp) as store:
        batches = _batches(add_points(store, POINTS), sizes.ingest_readings, THREAD_BATCH)
        with ThreadPoolExecutor(THREADS) as pool:
            started = time.perf_counter()
            futures = [pool.submit(produce, store, batches[k::THREADS]) for k in range(THREADS)]
            for future in futures:
                future.result()
            elapsed = time.perf_counter() - started
    return sum(map(len, batches)) / elapsed


def raw_apsw(sizes: Sizes) -> float:
    """Rows/s for apsw executemany into an append-only rowid table, one transaction a batch."""
    with tempfile.TemporaryDirectory() as tmp:
        fake_ids = list(range(1, POINTS + 1))
        batches = [
            [(r.point_id, r.ts_ms, r.value) for r in batch]
            for batch in _batches(fake_ids, sizes.ingest_readings, BATCH)
        ]
        conn = apsw.Connection(str(Path(tmp) / "raw.db"))
        try:
            conn.pragma("journal_mode", "wal")
            conn.pragma("synchronous", "full")
            conn.execute("CREATE TABLE raw (point_id INTEGER, ts INTEGER, value REAL)")
            started = time.perf_counter()
            for rows in batches:
                conn.execute("BEGIN")
                conn.executemany("INSERT INTO raw (point_id, ts, value) VALUES (?, ?, ?)", rows)
                conn.execute("COMMIT")
            elapsed = time.perf_counter() - started
        finally:
            conn.close()
    return sum(map(len, batches)) / elapsed


def ack_latency(sizes: Sizes) -> list[Result]:
    """p50/p99 of append_readings for 100-reading batches beside a flat-out 10k-batch producer.

    The flat-out producer's own calls give the length of one of its transactions,
    the "1 txn" of the target.
    """
    stop = threading.Event()
    bulk_calls: list[float] = []

    def flat_out(store: Store, point_ids: list[int]) -> None:
        second = 0
        while not stop.is_set():
            batch = series(point_ids, second, BATCH // POINTS)
            second += BATCH // POINTS
            started = time.perf_counter()
            store.append_readings(batch)
            bulk_calls.append(time.perf_counter() - started)

    latencies: list[float] = []
    with tempfile.TemporaryDirectory() as tmp, open_store(tmp) as store:
        bulk = add_points(store, POINTS, "bulk")
        probe = add_points(store, PROBE_BATCH, "probe")
        with ThreadPoolExecutor(1) as pool:
            background = pool.submit(flat_out, store, bulk)
            try:
                time.sleep(0.5)  # let the flat-out producer reach its pace
                bulk_calls.clear()
                tick = time.perf_counter()
                for second in range(sizes.ack_samples):
                    batch = series(probe, second, 1)
                    tick = max(tick + PROBE_PERIOD_S, time.perf_counter())
                    time.sleep(max(0.0, tick - time.perf_counter()))
                    started = time.perf_counter()
                    store.append_readings(batch)
                    latencies.append(time.perf_counter() - started)
            finally:
                stop.set()
            background.result()
    txn_ms = statistics.median(bulk_calls) * 1e3
    p99_ms = quantile(latencies, 0.99) * 1e3
    measure = f"ack latency, {PROBE_BATCH} beside {BATCH // 1000}k batches"
    return [
        Result(f"{measure}, p50", quantile(latencies, 0.5) * 1e3, "ms"),
        # Informational: a small append waits for the transaction in progress, whose size
        # the other producer sets; the README explains the figure.
        Result(f"{measure}, p99", p99_ms, "ms"),
        Result(f"  1 txn: a {BATCH // 1000}k-batch append beside it, median", txn_ms, "ms"),
    ]


def run(sizes: Sizes) -> list[Result]:
    """Every ingest measure."""
    one = store_one_producer(sizes)
    many = store_threads(sizes)
    raw = raw_apsw(sizes)
    return [
        at_least("ingest, 1 producer x 10k batches", one, "readings/s", TARGET_RATE),
        # Informational: commits of at most 4k readings; the target is for the 10k batches.
        Result(f"ingest, {THREADS} producers x 1k batches", many, "readings/s"),
        Result("raw apsw executemany, 10k batches", raw, "rows/s"),
        Result("ratio store/raw, 1 producer", one / raw, "x"),
        Result(f"ratio store/raw, {THREADS} producers", many / raw, "x"),
        *ack_latency(sizes),
    ]
