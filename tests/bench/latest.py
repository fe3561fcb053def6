"""Latest: `Store.latest` of 5,000 points that each have readings; median of repeated calls."""

from __future__ import annotations

import statistics
import tempfile
import time
from typing import Final

from tests.bench._common import Result, Sizes, add_points, at_most, open_store, series

READINGS_PER_POINT: Final = 10
TARGET_MS: Final = 20.0


def run(sizes: Sizes) -> list[Result]:
    """Give every point a few readings, then ask for the latest of them all."""
    count = sizes.latest_points
    times = []
    with tempfile.TemporaryDirectory() as tmp, open_store(tmp) as store:
        org = store.organization.id
        point_ids = add_points(store, count)
        for second in range(READINGS_PER_POINT):
            store.append_readings(series(point_ids, second, 1))
        for _ in range(sizes.latest_calls):
            started = time.perf_counter()
            latest = store.latest(org, point_ids)
            times.append(time.perf_counter() - started)
        if len(latest) != count:
            raise AssertionError(f"latest gave {len(latest)} points of {count}")
    median_ms = statistics.median(times) * 1e3
    return [at_most(f"latest of {count:,} points", median_ms, "ms", TARGET_MS)]
