"""Window reads: `range` pages and `aggregate` over 31 days of one point at 1 Hz.

The point's 2,678,400 readings go in through `append_readings` in 50,000-reading
batches, interleaved with a few neighbour points at 0.1 Hz. Measured:

- reading the whole window page by page with the largest page (MAX_PAGE rows);
- one 500-row page resumed from a cursor at a random position (the cursors met
  while reading the window), and one 500-row page of a window starting at a
  random time; medians;
- 15-minute buckets of avg, p95 and p99 over the whole window;
- seed 000's daily telemetry of both devices over the window.
"""

from __future__ import annotations

import random
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Final, TypeVar

from edge.models import Page
from edge.store import Store
from edge.store._facade import MAX_PAGE
from tests.bench._common import (
    DAY_S,
    T0_MS,
    Result,
    Sizes,
    add_points,
    at_most,
    open_store,
    series,
)

BATCH: Final = 50_000
NEIGHBOUR_STEP_S: Final = 10
PAGE: Final = 500
BUCKET_S: Final = 900
AGGREGATE_TARGET_S: Final = 1.0

T = TypeVar("T")


def _timed(calls: int, fn: Callable[[], T]) -> tuple[float, T]:
    """Median seconds of `calls` calls of `fn`, and what the last call returned."""
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def _load(store: Store, point_id: int, neighbours: list[int], seconds: int) -> None:
    for second in range(0, seconds, BATCH):
        span = min(BATCH, seconds - second)
        batch = series([point_id], second, span)
        batch += series(neighbours, second, span, NEIGHBOUR_STEP_S)
        store.append_readings(batch)


def _read_all(store: Store, point_id: int, end_ms: int) -> tuple[float, int, list[str]]:
    """Seconds to page through the window with MAX_PAGE pages, rows read, cursors met."""
    org = store.organization.id
    cursors: list[str] = []
    rows = 0
    cursor = None
    started = time.perf_counter()
    while True:
        page = store.range(org, point_id, T0_MS, end_ms, cursor, MAX_PAGE)
        rows += len(page.items)
        cursor = page.next_cursor
        if cursor is None:
            break
        cursors.append(cursor)
    return time.perf_counter() - started, rows, cursors


def run(sizes: Sizes) -> list[Result]:
    """Load the window, then time the reads."""
    seconds = sizes.range_days * DAY_S
    end_ms = T0_MS + seconds * 1000
    days = f"{sizes.range_days} d"
    rng = random.Random(7)
    results = []
    with tempfile.TemporaryDirectory() as tmp, open_store(tmp, max_batch=BATCH) as store:
        org = store.organization.id
        [point_id] = add_points(store, 1, "meter")
        neighbours = add_points(store, sizes.range_neighbours, "neighbours")
        _load(store, point_id, neighbours, seconds)

        whole_s, rows, cursors = _read_all(store, point_id, end_ms)
        if rows != seconds:
            raise AssertionError(f"read {rows} readings of {seconds}")
        results.append(Result(f"range, whole {days} in {MAX_PAGE}-row pages", whole_s, "s"))
        results.append(Result(f"range, whole {days}", rows / whole_s, "readings/s"))

        def resumed() -> Page:
            return store.range(org, point_id, T0_MS, end_ms, rng.choice(cursors), PAGE)

        def fresh() -> Page:
            start = T0_MS + rng.randrange(seconds - PAGE) * 1000
            return store.range(org, point_id, start, end_ms, None, PAGE)

        for name, read in (("from a cursor", resumed), ("at a random start", fresh)):
            median, page = _timed(sizes.page_calls, read)
            if len(page.items) != PAGE:
                raise AssertionError(f"a page {name} held {len(page.items)} readings")
            results.append(Result(f"range, {PAGE}-row page {name}", median * 1e3, "ms"))

        # Seed 000's daily telemetry: every point of the organization, a row per device and day.
        median, found = _timed(
            sizes.aggregate_calls, lambda: store.telemetry_daily(org, T0_MS, end_ms)
        )
        if len(found) != 2 * sizes.range_days:
            raise AssertionError(f"daily telemetry gave {len(found)} rows")
        results.append(Result(f"/reporting/telemetry-daily over {days}", median, "s"))

        buckets = seconds // BUCKET_S
        for fn in ("avg", "p95", "p99"):
            median, found = _timed(
                sizes.aggregate_calls,
                lambda fn=fn: store.aggregate(org, point_id, T0_MS, end_ms, BUCKET_S, fn),
            )
            if len(found) != buckets:
                raise AssertionError(f"{fn} gave {len(found)} buckets of {buckets}")
            results.append(
                at_most(f"aggregate {fn}, 15 min over {days}", median, "s", AGGREGATE_TARGET_S)
            )
    return results
