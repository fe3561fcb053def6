"""Movement windows found in a real SQLite file: hysteresis, failed polls, corrections,
runs crossing the window's edges, and other tenants."""

from __future__ import annotations

import pytest

from edge.models import Quality, Reading
from edge.store import NotFound
from tests.store.helpers import make_points, other_org

T0 = 1_780_000_000_000


def values(store, point_id, series, step_ms=1000, start=T0):
    readings = [
        Reading(point_id, start + i * step_ms, v,
                Quality.COMM_ERROR if v is None else Quality.GOOD)
        for i, v in enumerate(series)
    ]  # fmt: skip
    store.append_readings(readings)


def spans(store, point_id, start=T0, end=T0 + 10**9, on=5.0, off=5.0):
    org = store.organization.id
    return [(w.start_ms - T0, None if w.end_ms is None else w.end_ms - T0, w.samples, w.max)
            for w in store.movement_windows(org, point_id, start, end, on, off)]  # fmt: skip


def test_runs_start_at_the_threshold_and_end_at_the_first_reading_below(store):
    [p] = make_points(store, 1)
    values(store, p.id, [0, 6, 7, 8, 1, 0, 9, 9, 2])
    assert spans(store, p.id) == [(1000, 4000, 3, 8.0), (6000, 8000, 2, 9.0)]


def test_hysteresis_keeps_a_run_going_through_dips_above_the_off_level(store):
    [p] = make_points(store, 1)
    values(store, p.id, [0, 6, 4.5, 6, 3, 0])
    assert spans(store, p.id, on=5.0, off=4.0) == [(1000, 4000, 3, 6.0)]
    assert spans(store, p.id, on=5.0, off=5.0) == [(1000, 2000, 1, 6.0), (3000, 4000, 1, 6.0)]


def test_a_failed_poll_ends_a_run_and_a_run_at_the_newest_reading_is_ongoing(store):
    [p] = make_points(store, 1)
    values(store, p.id, [6, 6, None, 6, 7])
    assert spans(store, p.id) == [(0, 2000, 2, 6.0), (3000, None, 2, 7.0)]


def test_a_run_under_way_at_the_window_start_is_not_listed_but_one_crossing_its_end_is_whole(
    store,
):
    [p] = make_points(store, 1)
    values(store, p.id, [6, 6, 6, 0, 0, 6, 6, 6, 0])
    assert spans(store, p.id, start=T0 + 1000, end=T0 + 6000) == [(5000, 8000, 3, 6.0)]


def test_corrections_replace_the_values_runs_are_found_in(store):
    [p] = make_points(store, 1)
    values(store, p.id, [0, 6, 6, 0])
    store.append_readings([Reading(p.id, T0 + 2000, 1.0, Quality.GOOD, correction=True)])
    assert spans(store, p.id) == [(1000, 2000, 1, 6.0)]


def test_another_tenants_point_is_not_found(store):
    [mine] = make_points(store, 1)
    [theirs] = make_points(store, 1, org_id=other_org(store))
    values(store, theirs.id, [6, 0])
    with pytest.raises(NotFound):
        store.movement_windows(store.organization.id, theirs.id, T0, T0 + 10_000, 5.0, 5.0)
    assert spans(store, mine.id) == []
