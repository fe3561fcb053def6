"""The sync agent's state in the store: batches, the watermark, splits and quarantine."""

from __future__ import annotations

import random

from edge.models import Quality, Reading
from sync.backoff import Backoff
from tests.store.helpers import make_points


def _fill(store, n: int) -> list[int]:
    point = make_points(store, 1)[0].id
    return list(store.append_readings([Reading(point, 1_000 * i, float(i)) for i in range(n)]))


def test_batches_are_planned_once_and_resent_unchanged_until_acknowledged(store):
    seqs = _fill(store, 2500)
    batches = store.sync_plan(1000, 2) + store.sync_plan(1000, 2)
    assert batches == [(seqs[0], seqs[999]), (seqs[1000], seqs[1999]), (seqs[2000], seqs[2499])]
    assert store.sync_plan(1000) == []
    more = _fill(store, 10)  # arriving later: a new batch, never a longer old one
    assert store.sync_pending() == batches
    assert store.sync_plan(1000, 5) == [(more[0], more[-1])]
    assert [r.value for r in store.sync_items(*batches[0])] == [float(i) for i in range(1000)]


def test_the_watermark_waits_for_the_oldest_batch_whatever_order_acks_come_in(store):
    seqs = _fill(store, 300)
    batches = store.sync_plan(100, 3)
    assert store.sync_ack(batches[2][0]) == 0  # nothing below it is acknowledged yet
    assert store.sync_ack(batches[1][0]) == 0
    assert store.backlog()[0] == 300
    assert store.sync_ack(batches[0][0]) == seqs[-1]
    assert store.backlog() == (0, None) and store.sync_pending() == []


def test_a_split_halves_a_batch_by_readings_and_a_single_can_be_quarantined(store):
    seqs = _fill(store, 5)
    [(first, last)] = store.sync_plan(10)
    halves = store.sync_split(first, last)
    assert halves == [(seqs[0], seqs[1]), (seqs[2], seqs[4])]
    assert store.sync_pending() == halves
    single = store.sync_split(*halves[0])
    moved, mark = store.sync_quarantine(single[0][0], 422, {"error": {"code": "x"}})
    assert [m.seq for m in moved] == [seqs[0]] and moved[0].error == {"error": {"code": "x"}}
    assert mark == seqs[0]  # the watermark passes the quarantined reading
    assert store.sync_ack(single[1][0]) == seqs[1]
    assert store.quarantine_count() == 1
    page = store.quarantine_page(store.organization.id, None)
    assert [q.seq for q in page.items] == [seqs[0]] and page.items[0].quality is Quality.GOOD


def test_full_jitter_backoff_grows_to_its_cap_and_never_synchronises():
    backoff = Backoff(cap_s=30, rng=random.Random(7))
    delays = [backoff.next_delay() for _ in range(12)]
    assert all(0 <= d <= min(30, 2**i) for i, d in enumerate(delays))
    assert max(delays[6:]) > 8  # it does grow
    assert len({round(d, 6) for d in delays}) == len(delays)  # spread, not fixed steps
    backoff.reset()
    assert backoff.next_delay() <= 1.0
