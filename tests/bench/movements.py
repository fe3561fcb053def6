"""Movements: a pump's current at 1 Hz over 31 days plus 30 days of history.

The pump runs 5-25 minutes and rests 5-25 minutes, drawing about 12 A while it
runs. Measured: `/devices/{id}/movements` as the API computes it (the store's
leapfrog over the `(point, ts)` key, then judging each movement against the 30
days before it), beside the baseline of reading the same readings into Python
and finding the runs there, in the same run.
"""

from __future__ import annotations

import random
import tempfile
import time
from typing import Final

from edge import movements
from edge.models import Reading
from edge.store import Store
from tests.bench._common import DAY_S, T0_MS, Result, Sizes, add_points, at_most, open_store

BATCH: Final = 50_000
HISTORY_DAYS: Final = 30
ON_A: Final = 5.0
TARGET_S: Final = 1.0


def _currents(seconds: int) -> list[float]:
    rng = random.Random(11)
    out: list[float] = []
    running = False
    while len(out) < seconds:
        span = rng.randrange(300, 1500)
        out += [12.0 + rng.gauss(0, 0.3) if running else rng.uniform(0, 0.4) for _ in range(span)]
        running = not running
    return out[:seconds]


def _load(store: Store, point_id: int, seconds: int) -> None:
    amps = _currents(seconds)
    for first in range(0, seconds, BATCH):
        store.append_readings(
            [
                Reading(point_id, T0_MS + s * 1000, amps[s])
                for s in range(first, min(first + BATCH, seconds))
            ]
        )


def _python_scan(store: Store, point_id: int, start: int, end: int) -> int:
    """The baseline: every reading of the span through Python, runs found there."""
    runs, running, cursor = 0, False, None
    while True:
        page = store.range(store.organization.id, point_id, start, end, cursor, 10_000)
        for r in page.items:
            above = r.value is not None and r.value >= ON_A
            runs += above and not running
            running = above
        if page.next_cursor is None:
            return runs
        cursor = page.next_cursor


def run(sizes: Sizes) -> list[Result]:
    """Load the history and the window, then time both ways of finding the movements."""
    days, history = sizes.range_days, min(HISTORY_DAYS, sizes.range_days)
    seconds = (days + history) * DAY_S
    start = T0_MS + history * DAY_S * 1000
    end = T0_MS + seconds * 1000
    settings = movements.MovementSettings("current_a", ON_A, baseline_days=history)
    with tempfile.TemporaryDirectory() as tmp, open_store(tmp, max_batch=BATCH) as store:
        org = store.organization.id
        [point_id] = add_points(store, 1, "pump")
        _load(store, point_id, seconds)

        began = time.perf_counter()
        found = store.movement_windows(org, point_id, T0_MS, end, ON_A, ON_A)
        judged = movements.judge(found, settings, start, end)
        derive_s = time.perf_counter() - began

        began = time.perf_counter()
        scanned = _python_scan(store, point_id, T0_MS, end)
        scan_s = time.perf_counter() - began
        if scanned != len(found):
            raise AssertionError(f"the scan found {scanned} runs, the store {len(found)}")
    label = f"{days} d + {history} d history at 1 Hz"
    return [
        at_most(f"movements, {label} ({len(judged)} movements)", derive_s, "s", TARGET_S),
        Result(
            f"movements: every reading through Python, same span (/{derive_s:.2f} s = "
            f"{scan_s / derive_s:.1f}x)",
            scan_s,
            "s",
        ),
    ]
