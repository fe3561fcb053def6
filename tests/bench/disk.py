"""Disk: bytes per reading after 10 M readings (1,000 points at 1 Hz) and the rate they went in at.

Readings are appended in 50,000-reading batches; three in four points read a
voltage to one decimal, the fourth an energy counter. The size is that of
edge.db (plus any WAL left) after the store is closed; SQLite's dbstat table
splits it between the readings table and its sequence index.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Final

import apsw

from tests.bench._common import Result, Sizes, add_points, database_bytes, open_store, series

POINTS: Final = 1_000
BATCH: Final = 50_000


def _breakdown(directory: str) -> dict[str, tuple[int, int]]:
    """Bytes on disk and bytes unused of the readings table and each of its indexes."""
    conn = apsw.Connection(str(Path(directory) / "edge.db"), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        rows = conn.execute(
            "SELECT name, sum(pgsize), sum(unused) FROM dbstat "
            "WHERE name IN (SELECT name FROM sqlite_master WHERE tbl_name = 'readings') "
            "GROUP BY name"
        )
        return {name: (size, unused) for name, size, unused in rows if size}
    finally:
        conn.close()


def run(sizes: Sizes) -> list[Result]:
    """Load the readings, close the store, measure the file."""
    seconds = sizes.disk_readings // POINTS
    step = BATCH // POINTS
    appending = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        with open_store(tmp, max_batch=BATCH) as store:
            point_ids = add_points(store, POINTS)
            for second in range(0, seconds, step):
                batch = series(point_ids, second, min(step, seconds - second))
                started = time.perf_counter()
                store.append_readings(batch)
                appending += time.perf_counter() - started
        total = database_bytes(tmp)
        parts = _breakdown(tmp)
    count = seconds * POINTS
    millions = f"{count / 1e6:g} M"
    results = [
        Result(f"bytes/reading on disk, {millions} readings", total / count, "B"),
        Result(f"database file, {millions} readings", total / 2**20, "MiB"),
    ]
    for name, (size, unused) in sorted(parts.items()):
        if size < total / 100:
            continue
        results.append(Result(f"  of which {name}", size / count, "B/reading"))
        results.append(Result(f"  {name} pages used", 100 * (size - unused) / size, "%"))
    results.append(
        Result(f"ingest while loading {millions}, 50k batches", count / appending, "readings/s")
    )
    return results
