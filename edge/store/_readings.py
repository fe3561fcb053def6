"""SQL over readings: the batched insert, latest values, ranges, aggregates, outbox, retention.

Readings are append-only. A correction is a new row with the same timestamp
and `correction = 1`; a row is superseded when a correction with the same
point and timestamp and a higher sequence exists. Reads return only the
rows nothing supersedes. Because corrections are rare, a query first asks the
partial index whether its window has any, and only then pays for the filter.
"""

from __future__ import annotations

from typing import Any, Final

import apsw
import msgspec

from edge.models import Bucket, OutboxItem, Quality, StoredReading

AGGREGATES: Final = {
    "avg": "avg(value)",
    "min": "min(value)",
    "max": "max(value)",
    "sum": "sum(value)",
    "count": "count(value)",
    "p95": "percentile(value, 95)",
    "p99": "percentile(value, 99)",
}

# Up to this many buckets, a query per bucket beats one GROUP BY (which sorts the window).
PER_BUCKET_QUERIES_MAX: Final = 20_000

_INSERT = (
    "INSERT INTO readings (point_id, ts, seq, value, quality, correction) VALUES (?, ?, ?, ?, ?, ?)"
)
_UPSERT_LATEST = """
INSERT INTO point_latest (point_id, ts, seq, value, quality, correction)
VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (point_id) DO UPDATE SET
    seq = excluded.seq, ts = excluded.ts, value = excluded.value,
    quality = excluded.quality, correction = excluded.correction
WHERE (excluded.ts, excluded.seq) > (point_latest.ts, point_latest.seq)
"""
_NOT_SUPERSEDED = """
AND NOT EXISTS (
    SELECT 1 FROM readings AS c INDEXED BY readings_corrections
    WHERE c.correction = 1 AND c.point_id = readings.point_id
      AND c.ts = readings.ts AND c.seq > readings.seq)
"""


def meta_int(conn: apsw.Connection, key: str) -> int:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return int(row[0]) if row else 0


def set_meta(conn: apsw.Connection, key: str, value: int) -> None:
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?, ?) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (key, str(value)),
    )


def next_seq(conn: apsw.Connection) -> int:
    """The sequence the next reading gets: never reused, even after retention empties the table."""
    (top,) = conn.execute("SELECT coalesce(max(seq), 0) FROM readings").fetchone()
    return max(top, meta_int(conn, "seq_high_water")) + 1


def insert_readings(conn: apsw.Connection, rows: list[tuple], last_seq: int) -> None:
    """Insert rows (in `_INSERT`'s column order) and bring point_latest up to date."""
    conn.executemany(_INSERT, sorted(rows))
    # The newest row per point, found here in one pass: in SQL it would take a sort.
    newest: dict[int, tuple] = {}
    for row in rows:
        held = newest.get(row[0])
        if held is None or row[1] >= held[1]:
            newest[row[0]] = row
    conn.executemany(_UPSERT_LATEST, newest.values())
    set_meta(conn, "seq_high_water", last_seq)


def _has_corrections(conn: apsw.Connection, point_id: int, start: int, end: int) -> bool:
    return bool(
        conn.execute(
            "SELECT EXISTS (SELECT 1 FROM readings INDEXED BY readings_corrections "
            "WHERE correction = 1 AND point_id = ? AND ts >= ? AND ts < ?)",
            (point_id, start, end),
        ).fetchone()[0]
    )


def _stored(row: tuple) -> StoredReading:
    seq, point_id, ts, value, quality, correction = row
    return StoredReading(seq, point_id, ts, value, Quality(quality), bool(correction))


def latest(conn: apsw.Connection, org_id: str, point_ids: str) -> list[StoredReading]:
    """Latest reading of each point in the JSON array `point_ids` that belongs to the org."""
    rows = conn.execute(
        "SELECT l.seq, l.point_id, l.ts, l.value, l.quality, l.correction "
        # CROSS JOIN keeps json_each outermost: one probe per asked id, not a scan per point.
        "FROM json_each(?) AS j CROSS JOIN point_latest AS l ON l.point_id = j.value "
        "JOIN points AS p ON p.id = l.point_id WHERE p.org_id = ?",
        (point_ids, org_id),
    )
    return [_stored(row) for row in rows]


def range_(
    conn: apsw.Connection,
    point_id: int,
    start: int,
    end: int,
    after: tuple[int, int] | None,
    limit: int,
) -> list[StoredReading]:
    """Up to `limit` current readings of a point in [start, end), after the keyset `after`."""
    after_ts, after_seq = after if after is not None else (start, -1)
    extra = _NOT_SUPERSEDED if _has_corrections(conn, point_id, start, end) else ""
    # The seek starts at the cursor (max of start and its ts), so a late page costs what
    # the first one does; the row comparison then skips the rows the cursor has seen.
    rows = conn.execute(
        "SELECT seq, point_id, ts, value, quality, correction FROM readings "
        "WHERE point_id = ?1 AND ts >= max(?2, ?4) AND ts < ?3 AND (ts, seq) > (?4, ?5) "
        f"{extra} ORDER BY ts, seq LIMIT ?6",
        (point_id, start, end, after_ts, after_seq, limit),
    )
    return [_stored(row) for row in rows]


def aggregate(
    conn: apsw.Connection, point_id: int, start: int, end: int, width_ms: int, fn: str
) -> list[Bucket]:
    """One bucket per `width_ms` interval (aligned to the epoch) holding good readings."""
    extra = _NOT_SUPERSEDED if _has_corrections(conn, point_id, start, end) else ""
    where = (
        "WHERE point_id = ?2 AND ts >= ?3 AND ts < ?4 AND quality = 0 AND value IS NOT NULL "
        f"{extra}"
    )
    first = start // width_ms * width_ms
    if (end - first) // width_ms > PER_BUCKET_QUERIES_MAX:
        rows = conn.execute(
            f"SELECT (ts / ?1) * ?1 AS bucket, {AGGREGATES[fn]}, count(value) FROM readings "
            f"{where} GROUP BY bucket ORDER BY bucket",
            (width_ms, point_id, start, end),
        )
        return [Bucket(bucket, value, count) for bucket, value, count in rows]
    # One indexed range per bucket reads rows in the order they lie on disk; GROUP BY on
    # the bucket expression would sort every row of the window first.
    statement = f"SELECT {AGGREGATES[fn]}, count(value) FROM readings {where}"
    buckets = []
    for bucket in range(first, end, width_ms):
        value, count = conn.execute(
            statement, (None, point_id, max(bucket, start), min(bucket + width_ms, end))
        ).fetchone()
        if count:
            buckets.append(Bucket(bucket, value, count))
    return buckets


class Summary(msgspec.Struct, frozen=True, gc=False):
    """A window's good current readings in one row: count, extremes, mean, total, ends."""

    count: int
    min: float | None
    max: float | None
    avg: float | None
    sum: float | None
    first_ts_ms: int | None
    first: float | None
    last_ts_ms: int | None
    last: float | None


def summary(conn: apsw.Connection, point_id: int, start: int, end: int) -> Summary:
    """Count, min, max, avg, sum, and the first and last value of good readings in [start, end)."""
    extra = _NOT_SUPERSEDED if _has_corrections(conn, point_id, start, end) else ""
    good = (
        "FROM readings WHERE point_id = ?1 AND ts >= ?2 AND ts < ?3 AND quality = 0 "
        f"AND value IS NOT NULL {extra}"
    )
    # The ends are two LIMIT 1 seeks along the primary key, so the window is read once, by
    # the aggregate, and never sorted.
    row = conn.execute(
        "SELECT s.n, s.lo, s.hi, s.mean, s.total, f.ts, f.value, l.ts, l.value FROM "
        "(SELECT count(value) AS n, min(value) AS lo, max(value) AS hi, avg(value) AS mean, "
        f"sum(value) AS total {good}) AS s "
        f"LEFT JOIN (SELECT ts, value {good} ORDER BY ts, seq LIMIT 1) AS f ON 1 "
        f"LEFT JOIN (SELECT ts, value {good} ORDER BY ts DESC, seq DESC LIMIT 1) AS l ON 1",
        (point_id, start, end),
    ).fetchone()
    return Summary(*row)


_OUTBOX = (
    "SELECT r.seq, p.org_id, p.device_id, p.key, r.ts, r.value, r.quality, r.correction "
    "FROM readings AS r INDEXED BY readings_by_seq JOIN points AS p ON p.id = r.point_id "
)


def _outbox(rows: Any) -> list[OutboxItem]:
    return [
        OutboxItem(seq, org, device, key, ts, value, Quality(quality), bool(correction))
        for seq, org, device, key, ts, value, quality, correction in rows
    ]


def outbox_batch(conn: apsw.Connection, after_seq: int, limit: int) -> list[OutboxItem]:
    """Committed readings after `after_seq`, in sequence order."""
    return _outbox(
        conn.execute(_OUTBOX + "WHERE r.seq > ? ORDER BY r.seq LIMIT ?", (after_seq, limit))
    )


def outbox_items(conn: apsw.Connection, first: int, last: int) -> list[OutboxItem]:
    """Committed readings with sequence numbers in [first, last], in sequence order."""
    return _outbox(
        conn.execute(_OUTBOX + "WHERE r.seq BETWEEN ? AND ? ORDER BY r.seq", (first, last))
    )


def synced_seq(conn: apsw.Connection) -> int:
    """The highest sequence the upstream has acknowledged (everything at or below it)."""
    return meta_int(conn, "synced_seq")


def mark_synced(conn: apsw.Connection, seq: int) -> int:
    """Advance the synced watermark to `seq` (never backwards); returns the watermark."""
    high = meta_int(conn, "seq_high_water")
    if seq > high:
        raise ValueError(f"sequence {seq} has not been written (highest is {high})")
    current = max(meta_int(conn, "synced_seq"), seq)
    set_meta(conn, "synced_seq", current)
    return current


def backlog(conn: apsw.Connection) -> tuple[int, int | None]:
    """Unsynced readings and the timestamp of the oldest of them."""
    synced = synced_seq(conn)
    count, oldest = conn.execute(
        "SELECT count(*), min(ts) FROM readings INDEXED BY readings_by_seq WHERE seq > ?",
        (synced,),
    ).fetchone()
    return count, oldest


def drop_synced_before(conn: apsw.Connection, cutoff_ms: int, limit: int) -> int:
    """Delete up to `limit` synced readings older than the cutoff; returns how many."""
    conn.execute(
        "DELETE FROM readings WHERE seq IN (SELECT seq FROM readings INDEXED BY readings_by_seq "
        "WHERE seq <= ? AND ts < ? ORDER BY seq LIMIT ?)",
        (synced_seq(conn), cutoff_ms, limit),
    )
    return conn.changes()


def range_points(
    conn: apsw.Connection,
    point_ids: str,
    start: int,
    end: int,
    after: tuple[int, int, int] | None,
    limit: int,
) -> list[StoredReading]:
    """Current readings of several points (a JSON array) in [start, end), point by point."""
    after_point, after_ts, after_seq = after if after is not None else (-1, start, -1)
    corrected = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM readings INDEXED BY readings_corrections "
        "WHERE correction = 1 AND point_id IN (SELECT value FROM json_each(?1)) "
        "AND ts >= ?2 AND ts < ?3)",
        (point_ids, start, end),
    ).fetchone()[0]
    extra = _NOT_SUPERSEDED if corrected else ""
    rows = conn.execute(
        "SELECT seq, point_id, ts, value, quality, correction FROM readings "
        "WHERE point_id IN (SELECT value FROM json_each(?1)) AND ts >= ?2 AND ts < ?3 "
        f"AND (point_id, ts, seq) > (?4, ?5, ?6) {extra} ORDER BY point_id, ts, seq LIMIT ?7",
        (point_ids, start, end, after_point, after_ts, after_seq, limit),
    )
    return [_stored(row) for row in rows]
