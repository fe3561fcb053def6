"""Readings: commit before acknowledgement, corrections, pages, aggregates, outbox, tenancy."""

from __future__ import annotations

import statistics
import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.models import Quality, Reading
from edge.store import InvalidCursor, NotFound, Store, UnknownPoint
from tests.store.helpers import make_points, other_org, page_through_while

HOUR = 3_600_000


def test_appended_readings_are_committed_before_append_returns(settings):
    store = Store.open(settings)
    try:
        (point,) = make_points(store, 1)
        seqs = store.append_readings([Reading(point.id, t * 1000, float(t)) for t in range(10)])
        assert list(seqs) == list(range(seqs.start, seqs.start + 10))
        # A new process-independent connection (a second Store on the same file) sees them.
        second = Store(settings.database_path, settings)
        try:
            page = second.range(store.organization.id, point.id, 0, 10_000)
            assert [r.value for r in page.items] == [float(t) for t in range(10)]
        finally:
            second.close()
    finally:
        store.close()


def test_sequences_never_go_back_after_retention_empties_the_table(settings):
    store = Store.open(settings)
    (point,) = make_points(store, 1)
    first = store.append_readings([Reading(point.id, 1000, 1.0), Reading(point.id, 2000, 2.0)])
    store.mark_synced(first[-1])
    assert store.apply_retention(1, now=10 * 86_400_000) == 2
    store.close()
    reopened = Store.open(settings)
    try:
        again = reopened.append_readings([Reading(point.id, 3000, 3.0)])
        assert again.start > first[-1]
        assert reopened.outbox_batch(reopened.synced_seq(), 10)[0].seq == again.start
    finally:
        reopened.close()


def test_a_correction_supersedes_the_reading_everywhere(store):
    (point,) = make_points(store, 1)
    org = store.organization.id
    store.append_readings([Reading(point.id, t * 1000, 10.0) for t in range(4)])
    store.append_readings([Reading(point.id, 2000, 99.0, correction=True)])
    store.append_readings([Reading(point.id, 2000, 50.0, correction=True)])
    items = store.range(org, point.id, 0, 10_000).items
    assert [(r.ts_ms, r.value) for r in items] == [(0, 10), (1000, 10), (2000, 50), (3000, 10)]
    assert items[2].correction
    (bucket,) = store.aggregate(org, point.id, 0, 4000, 3600, "sum")
    assert (bucket.value, bucket.count) == (80.0, 4)
    # Every version stays on disk for the outbox: 4 originals and 2 corrections.
    assert len(store.outbox_batch(0, 100)) == 6


def test_correcting_the_newest_reading_updates_latest(store):
    (point,) = make_points(store, 1)
    org = store.organization.id
    store.append_readings([Reading(point.id, 5000, 1.0)])
    store.append_readings([Reading(point.id, 5000, 2.0, correction=True)])
    assert store.latest(org, [point.id])[point.id].value == 2.0


def test_latest_follows_timestamps_not_arrival_order(store):
    a, b = make_points(store, 2)
    org = store.organization.id
    store.append_readings([Reading(a.id, 10_000, 10.0), Reading(b.id, 10_000, 20.0)])
    store.append_readings([Reading(a.id, 5_000, 5.0)])  # a late backfill
    latest = store.latest(org, [a.id, b.id, 999_999])
    assert {k: v.value for k, v in latest.items()} == {a.id: 10.0, b.id: 20.0}


def test_failed_reads_carry_quality_and_no_value_and_are_left_out_of_aggregates(store):
    (point,) = make_points(store, 1)
    org = store.organization.id
    store.append_readings(
        [
            Reading(point.id, 0, 4.0),
            Reading(point.id, 1000, None, Quality.COMM_ERROR),
            Reading(point.id, 2000, 6.0),
        ]
    )
    items = store.range(org, point.id, 0, 3000).items
    assert [(r.value, r.quality) for r in items] == [
        (4.0, Quality.GOOD),
        (None, Quality.COMM_ERROR),
        (6.0, Quality.GOOD),
    ]
    (bucket,) = store.aggregate(org, point.id, 0, 3000, 60, "avg")
    assert (bucket.value, bucket.count) == (5.0, 2)
    assert store.latest(org, [point.id])[point.id].quality is Quality.GOOD


def test_pages_neither_skip_nor_repeat_while_readings_arrive(store):
    (point,) = make_points(store, 1)
    org = store.organization.id
    store.append_readings([Reading(point.id, t * 1000, float(t)) for t in range(0, 2000, 2)])

    def writer(stop: threading.Event) -> None:
        odd = 1
        while not stop.is_set() and odd < 2000:
            store.append_readings([Reading(point.id, odd * 1000, float(odd))])
            odd += 2

    items = page_through_while(
        lambda cursor: store.range(org, point.id, 0, 2_000_000, cursor=cursor, limit=37), writer
    )
    seen = [r.ts_ms for r in items]
    assert seen == sorted(set(seen)), "a page repeated or reordered readings"
    assert set(range(0, 2_000_000, 2000)) <= set(seen), "a page skipped a reading"


def test_a_damaged_cursor_is_refused(store):
    (point,) = make_points(store, 1)
    with pytest.raises(InvalidCursor):
        store.range(store.organization.id, point.id, 0, 1000, cursor="not-a-cursor")


def test_another_organizations_point_is_not_found(store):
    (point,) = make_points(store, 1)
    store.append_readings([Reading(point.id, 0, 1.0)])
    stranger = other_org(store)
    with pytest.raises(NotFound):
        store.range(stranger, point.id, 0, 1000)
    with pytest.raises(NotFound):
        store.aggregate(stranger, point.id, 0, 1000, 60, "avg")
    assert store.latest(stranger, [point.id]) == {}
    assert store.points(stranger) == []


def test_readings_for_unknown_points_are_refused(store):
    with pytest.raises(UnknownPoint):
        store.append_readings([Reading(424242, 0, 1.0)])


def test_bad_windows_and_functions_are_refused(store):
    (point,) = make_points(store, 1)
    org = store.organization.id
    with pytest.raises(ValueError, match="after its start"):
        store.range(org, point.id, 1000, 1000)
    with pytest.raises(ValueError, match="unknown aggregate"):
        store.aggregate(org, point.id, 0, 1000, 60, "median")
    with pytest.raises(ValueError, match="limit"):
        store.range(org, point.id, 0, 1000, limit=0)


def test_outbox_follows_sequence_and_the_watermark_only_moves_forward(store):
    a, b = make_points(store, 2)
    seqs = store.append_readings([Reading(a.id, 0, 1.0), Reading(b.id, 0, 2.0)])
    seqs2 = store.append_readings([Reading(a.id, 1000, 3.0)])
    batch = store.outbox_batch(0, 10)
    assert [i.seq for i in batch] == [*seqs, *seqs2]
    assert [i.metric for i in batch] == ["p0", "p1", "p0"]
    assert store.mark_synced(seqs[-1]) == seqs[-1]
    assert store.mark_synced(seqs[0]) == seqs[-1], "the watermark went backwards"
    assert [i.seq for i in store.outbox_batch(store.synced_seq(), 10)] == list(seqs2)
    with pytest.raises(ValueError, match="has not been written"):
        store.mark_synced(seqs2[-1] + 1)
    assert store.backlog() == (1, 1000)


def test_retention_never_drops_unsynced_readings(store):
    (point,) = make_points(store, 1)
    org = store.organization.id
    seqs = store.append_readings([Reading(point.id, t * HOUR, 1.0) for t in range(10)])
    store.mark_synced(seqs[4])
    now = 100 * 86_400_000
    assert store.apply_retention(30, now=now) == 5
    left = store.range(org, point.id, 0, 11 * HOUR).items
    assert [r.seq for r in left] == list(seqs[5:])
    assert store.apply_retention(0, now=now) == 0


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    values=st.lists(
        st.floats(min_value=-1e6, max_value=1e6, allow_nan=False), min_size=1, max_size=300
    )
)
def test_aggregates_agree_with_python(store, values):
    (point,) = make_points(store, 1)
    org = store.organization.id
    store.append_readings([Reading(point.id, i * 1000, v) for i, v in enumerate(values)])
    end = len(values) * 1000

    def one(fn: str) -> float:
        (bucket,) = store.aggregate(org, point.id, 0, end, 86_400, fn)
        assert bucket.count == len(values)
        return bucket.value

    def percentile(q: float) -> float:
        ordered = sorted(values)
        rank = (len(ordered) - 1) * q
        low = int(rank)
        high = min(low + 1, len(ordered) - 1)
        return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)

    assert one("min") == min(values)
    assert one("max") == max(values)
    assert one("sum") == pytest.approx(sum(values), abs=1e-6)
    assert one("avg") == pytest.approx(statistics.fmean(values), abs=1e-6)
    assert one("p95") == pytest.approx(percentile(0.95), abs=1e-6)
    assert one("p99") == pytest.approx(percentile(0.99), abs=1e-6)


def test_aggregate_buckets_align_to_the_interval(store):
    (point,) = make_points(store, 1)
    org = store.organization.id
    base = 1_700_000_000_000 // 900_000 * 900_000
    store.append_readings([Reading(point.id, base + s * 1000, float(s)) for s in range(1800)])
    buckets = store.aggregate(org, point.id, base, base + 1_800_000, 900, "max")
    assert [(b.start_ms - base, b.value, b.count) for b in buckets] == [
        (0, 899.0, 900),
        (900_000, 1799.0, 900),
    ]


def test_fine_buckets_over_a_long_window_agree_with_coarse_ones(store):
    # Over PER_BUCKET_QUERIES_MAX buckets the store groups in one query; both ways must agree.
    from edge.store._readings import PER_BUCKET_QUERIES_MAX

    (point,) = make_points(store, 1)
    org = store.organization.id
    store.append_readings([Reading(point.id, s * 7_000, float(s % 13)) for s in range(5000)])
    end = (PER_BUCKET_QUERIES_MAX + 10) * 1000
    fine = store.aggregate(org, point.id, 0, end, 1, "max")
    assert len(fine) == len({s * 7 for s in range(5000) if s * 7_000 < end})
    coarse = store.aggregate(org, point.id, 0, end, 7, "max")
    assert [(b.start_ms, b.value) for b in fine] == [(b.start_ms, b.value) for b in coarse]
