"""Report runs (seed 002): each a CSV computed from the store, within the requester's boundary.

- `energy_daily`: energy per device, counter and UTC day, from energy counters
  (points whose unit is Wh, kWh, MWh, varh or kvarh, or whose key says
  `energy` or ends in `_wh`/`_kwh`; or the one `metric` the run names). A
  day's energy is the sum of the increments between consecutive good
  readings, each counted on the day of the later reading. A reading lower than
  the one before is a counter reset (a replaced or rolled-over meter): the
  counter is taken to have restarted from zero, so its new value is the
  increment, and the day's `resets` says so. No increment spans the window's
  start (the first reading in the window is the baseline), a gap's whole
  increment falls on the day the readings resume, and a day without readings
  has no row rather than a zero.
- `alarm_log`: every alarm raised in the window, oldest first, with who
  acknowledged and cleared it and when.
- `telemetry_daily`: count, min, max and avg of each metric's good readings
  per UTC day.

A scope narrows a run to one device or to the devices of one site; without
one it covers every device the requester may see. Readings are read through
the store's keyset pages, a page at a time, and a run stops between pages
when the gateway does (`Stopped`), leaving its job to run again at start.
"""

from __future__ import annotations

import csv
import io
import threading
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO, Final

from edge.job_files import day, iso
from edge.models import Boundary, Device, Point, StoredReading
from edge.store import DeviceFilter, Job, Store

REPORT_TYPES: Final = ("energy_daily", "alarm_log", "telemetry_daily")
ENERGY_UNITS: Final = frozenset({"wh", "kwh", "mwh", "varh", "kvarh"})
# Readings per store call: what a run holds in memory per point.
PAGE: Final = 500
DAY_S: Final = 86_400
ENERGY_COLUMNS: Final = ("device_id", "metric", "day", "energy", "unit", "first_value",
                         "last_value", "readings", "resets")  # fmt: skip
ALARM_COLUMNS: Final = ("alarm_id", "rule_id", "device_id", "metric", "severity", "message",
                        "value", "raised_at", "acknowledged_at", "acknowledged_by",
                        "cleared_at", "cleared_by")  # fmt: skip
DAILY_COLUMNS: Final = ("device_id", "metric", "day", "count", "min", "max", "avg", "unit")
DAILY_FNS: Final = ("min", "max", "avg")
# A csv writer (its type is private to the csv module).
Writer = Any


class Stopped(Exception):
    """The gateway is stopping: the run ends without a result and will run again."""


def check(stop: threading.Event) -> None:
    """Raise Stopped once the gateway asks to stop."""
    if stop.is_set():
        raise Stopped


def scope_devices(store: Store, job: Job) -> list[Device]:
    """The devices a job covers, within its boundary, by id."""
    if job.scope_type == "DEVICE" and job.scope_id:
        return [store.device(job.boundary, job.scope_id)]
    where = DeviceFilter(site_id=job.scope_id if job.scope_type == "SITE" else None)
    found: list[Device] = []
    cursor: str | None = None
    while True:
        page = store.device_page(job.boundary, where, cursor, PAGE)
        found += page.items
        cursor = page.next_cursor
        if cursor is None:
            return sorted(found, key=lambda d: d.id)


def readings(
    store: Store, owner: Boundary, point_id: int, window: tuple[int, int], stop: threading.Event
) -> Iterator[StoredReading]:
    """A point's current readings in the window, oldest first, a store page at a time."""
    cursor: str | None = None
    while True:
        check(stop)
        page = store.range(owner, point_id, *window, cursor, PAGE)
        yield from page.items
        cursor = page.next_cursor
        if cursor is None:
            return


def is_energy_counter(point: Point) -> bool:
    """Whether a point counts energy (by its unit, else by its key)."""
    unit = (point.unit or "").lower()
    key = point.key.lower()
    return unit in ENERGY_UNITS or "energy" in key or key.endswith(("_wh", "_kwh"))


def _value(number: float | None) -> str:
    return "" if number is None else repr(round(number, 9))


def _energy(store: Store, job: Job, writer: Writer, stop: threading.Event) -> int:
    rows = 0
    metric = job.params.get("metric")
    for device in scope_devices(store, job):
        for point in store.points(job.boundary, device.id):
            if not (point.key == metric if metric else is_energy_counter(point)):
                continue
            for values in _energy_days(store, job, point, stop):
                writer.writerow((device.id, point.key, *values))
                rows += 1
    return rows


def _energy_days(
    store: Store, job: Job, point: Point, stop: threading.Event
) -> Iterator[tuple[object, ...]]:
    """(day, energy, unit, first, last, readings, resets) per day with readings."""
    current: list = []  # day, energy, first, last, readings, resets
    previous: float | None = None
    for r in readings(store, job.boundary, point.id, (job.start_ms, job.end_ms), stop):
        if r.value is None:
            continue
        this_day = day(r.ts_ms)
        if not current or current[0] != this_day:
            if current:
                yield _energy_row(current, point)
            current = [this_day, 0.0, r.value, r.value, 0, 0]
        if previous is not None:
            if r.value >= previous:
                current[1] += r.value - previous
            else:
                current[1] += r.value
                current[5] += 1
        current[3] = r.value
        current[4] += 1
        previous = r.value
    if current:
        yield _energy_row(current, point)


def _energy_row(current: list, point: Point) -> tuple[object, ...]:
    this_day, energy, first, last, count, resets = current
    return (this_day, _value(energy), point.unit or "", _value(first), _value(last), count,
            resets)  # fmt: skip


def _alarms(store: Store, job: Job, writer: Writer, stop: threading.Event) -> int:
    device_ids: list[str | None] = [None]
    if job.scope_type is not None:
        device_ids = [d.id for d in scope_devices(store, job)]
    alarms = []
    for device_id in device_ids:
        cursor: str | None = None
        while True:
            check(stop)
            page = store.alarm_page(job.boundary, device_id=device_id,
                                    window=(job.start_ms, job.end_ms), cursor=cursor,
                                    limit=PAGE)  # fmt: skip
            alarms += page.items
            cursor = page.next_cursor
            if cursor is None:
                break
    alarms.sort(key=lambda a: (a.raised_at, a.id))
    for a in alarms:
        acked, cleared = (iso(t) if t else "" for t in (a.acked_at, a.cleared_at))
        writer.writerow((a.id, a.rule_id, a.device_id or "", a.metric or "", a.severity,
                         a.message, _value(a.value), iso(a.raised_at), acked, a.acked_by or "",
                         cleared, a.cleared_by or ""))  # fmt: skip
    return len(alarms)


def _daily(store: Store, job: Job, writer: Writer, stop: threading.Event) -> int:
    rows = 0
    window = (job.start_ms, job.end_ms)
    for device in scope_devices(store, job):
        for point in store.points(job.boundary, device.id):
            check(stop)
            counts = store.aggregate(job.boundary, point.id, *window, DAY_S, "count")
            values = {fn: {b.start_ms: b.value for b in
                           store.aggregate(job.boundary, point.id, *window, DAY_S, fn)}
                      for fn in DAILY_FNS}  # fmt: skip
            for b in counts:
                writer.writerow((device.id, point.key, day(b.start_ms), b.count,
                                 *(_value(values[fn].get(b.start_ms)) for fn in DAILY_FNS),
                                 point.unit or ""))  # fmt: skip
                rows += 1
    return rows


_REPORTS: Final[dict[str, tuple[tuple[str, ...], Callable[..., int]]]] = {
    "energy_daily": (ENERGY_COLUMNS, _energy),
    "alarm_log": (ALARM_COLUMNS, _alarms),
    "telemetry_daily": (DAILY_COLUMNS, _daily),
}


def write_report(store: Store, job: Job, out: BinaryIO, stop: threading.Event) -> dict[str, int]:
    """Write the job's report as CSV (UTF-8, header first) to `out`; returns its row count."""
    columns, build = _REPORTS[job.type]
    text = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=True)
    try:
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(columns)
        rows = build(store, job, writer, stop)
        text.flush()
    finally:
        text.detach()
    return {"row_count": rows}
