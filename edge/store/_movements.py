"""SQL that finds movement windows in a point's readings (see `edge.movements`).

The windows are found by leapfrogging along the `(point, ts)` key: the first
reading at or above the on level, then the first one after it below the off
level (or without a value), and so on. Each step is an index seek that SQLite
scans in C, which over a month at 1 Hz is several times faster than a window
function or reading every row into Python. Each window's figures then come
from one aggregate over its own key range.
"""

from __future__ import annotations

import apsw

from edge.movements import Window
from edge.store._readings import _NOT_SUPERSEDED, _has_corrections

_FOREVER = 2**62


def windows(
    conn: apsw.Connection, point_id: int, start: int, end: int, on: float, off: float
) -> list[Window]:
    """Windows of the point that start in [start, end), oldest first; a window's end may lie
    past `end` (it is followed to its first reading below `off`)."""
    current = _NOT_SUPERSEDED if _has_corrections(conn, point_id, start, _FOREVER) else ""
    rise = (
        "SELECT ts FROM readings WHERE point_id = ?1 AND ts >= ?2 AND ts < ?3 "
        f"AND value >= ?4 {current} ORDER BY ts LIMIT 1"
    )
    fall = (
        "SELECT ts FROM readings WHERE point_id = ?1 AND ts > ?2 "
        f"AND (value IS NULL OR value < ?3) {current} ORDER BY ts LIMIT 1"
    )
    figures = (
        "SELECT count(value), min(value), max(value), avg(value), max(ts) FROM readings "
        f"WHERE point_id = ?1 AND ts >= ?2 AND ts < ?3 AND value IS NOT NULL {current}"
    )
    # A run already going at `start` began before it: skip to its end first.
    position = start
    if _running_at(conn, point_id, start, on, off, current):
        found = conn.execute(fall, (point_id, start - 1, off)).fetchone()
        if found is None:
            return []
        position = found[0]
    out = []
    while (found := conn.execute(rise, (point_id, position, end, on)).fetchone()) is not None:
        begin = found[0]
        stop = conn.execute(fall, (point_id, begin, off)).fetchone()
        end_ms = stop[0] if stop is not None else None
        samples, low, high, mean, last = conn.execute(
            figures, (point_id, begin, _FOREVER if end_ms is None else end_ms)
        ).fetchone()
        out.append(Window(begin, end_ms, last, samples, low, high, mean))
        if end_ms is None:
            break
        position = end_ms
    return out


def _running_at(
    conn: apsw.Connection, point_id: int, at: int, on: float, off: float, current: str
) -> bool:
    """Whether a run is in progress at `at`: the newest reading before it that is decisive
    (at or above `on`, or below `off` / without a value) is an on reading."""
    row = conn.execute(
        "SELECT value FROM readings WHERE point_id = ?1 AND ts < ?2 "
        f"AND (value IS NULL OR value >= ?3 OR value < ?4) {current} ORDER BY ts DESC LIMIT 1",
        (point_id, at, on, off),
    ).fetchone()
    return row is not None and row[0] is not None and row[0] >= on
