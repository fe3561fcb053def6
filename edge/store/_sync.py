"""SQL the sync agent owns: push batches, the synced watermark, quarantine, pull watermarks.

A push batch is a sequence range recorded before it is sent, so a crash between
sending and acknowledging resends exactly the same range (and Idempotency-Key).
The synced watermark only passes a range once every range below it is
acknowledged or quarantined: readings are never lost, whatever the order in which
concurrent batches finish.
"""

from __future__ import annotations

from typing import Any

import apsw
import msgspec

from edge import ids
from edge.models import OutboxItem, Quality, QuarantinedReading, now_ms
from edge.store._readings import meta_int, outbox_items, set_meta, synced_seq


def gateway_id(conn: apsw.Connection) -> str:
    """This gateway's id, made on first use: it names the gateway to the upstream."""
    row = conn.execute("SELECT value FROM meta WHERE key = 'gateway_id'").fetchone()
    if row is not None:
        return row[0]
    made = ids.new_id("gw")
    conn.execute("INSERT INTO meta (key, value) VALUES ('gateway_id', ?)", (made,))
    return made


def pending_batches(conn: apsw.Connection) -> list[tuple[int, int]]:
    """Recorded, unacknowledged batches as (first, last) sequence ranges, oldest first."""
    return list(conn.execute("SELECT first_seq, last_seq FROM sync_batches ORDER BY first_seq"))


def plan_batches(conn: apsw.Connection, size: int, count: int) -> list[tuple[int, int]]:
    """Record up to `count` next batches of up to `size` committed readings each."""
    planned = max(meta_int(conn, "sync_planned_seq"), synced_seq(conn))
    seqs = [
        row[0]
        for row in conn.execute(
            "SELECT seq FROM readings INDEXED BY readings_by_seq WHERE seq > ? ORDER BY seq "
            "LIMIT ?",
            (planned, size * count),
        )
    ]
    batches = [(seqs[i], seqs[min(i + size, len(seqs)) - 1]) for i in range(0, len(seqs), size)]
    ts = now_ms()
    conn.executemany(
        "INSERT INTO sync_batches (first_seq, last_seq, created_at) VALUES (?, ?, ?)",
        [(first, last, ts) for first, last in batches],
    )
    if batches:
        set_meta(conn, "sync_planned_seq", batches[-1][1])
    return batches


def batch_items(conn: apsw.Connection, first: int, last: int) -> list[OutboxItem]:
    """The readings of a batch's range, in sequence order."""
    return outbox_items(conn, first, last)


def _advance(conn: apsw.Connection) -> int:
    """Move the synced watermark to just below the oldest unacknowledged batch."""
    oldest = conn.execute("SELECT min(first_seq) FROM sync_batches").fetchone()[0]
    mark = oldest - 1 if oldest is not None else meta_int(conn, "sync_planned_seq")
    current = max(synced_seq(conn), mark)
    set_meta(conn, "synced_seq", current)
    return current


def ack_batches(conn: apsw.Connection, firsts: list[int]) -> int:
    """The upstream holds the batches starting at `firsts`; returns the synced watermark."""
    conn.executemany("DELETE FROM sync_batches WHERE first_seq = ?", [(f,) for f in firsts])
    return _advance(conn)


def split_batch(conn: apsw.Connection, first: int, last: int) -> list[tuple[int, int]]:
    """Replace a batch by its two halves (by readings, not by sequence numbers)."""
    seqs = [
        row[0]
        for row in conn.execute(
            "SELECT seq FROM readings INDEXED BY readings_by_seq WHERE seq BETWEEN ? AND ? "
            "ORDER BY seq",
            (first, last),
        )
    ]
    if len(seqs) < 2:
        raise ValueError(f"batch {first}-{last} holds {len(seqs)} reading(s) and cannot split")
    middle = seqs[len(seqs) // 2 - 1]
    halves = [(first, middle), (seqs[len(seqs) // 2], last)]
    conn.execute("DELETE FROM sync_batches WHERE first_seq = ?", (first,))
    ts = now_ms()
    for a, b in halves:
        conn.execute(
            "INSERT INTO sync_batches (first_seq, last_seq, created_at) VALUES (?, ?, ?)",
            (a, b, ts),
        )
    return halves


_Q_COLUMNS = (
    "id, seq, org_id, device_id, metric, ts, value, quality, correction, status, error, "
    "created_at, attempts, retry"
)


def _quarantined(row: tuple) -> QuarantinedReading:
    (id_, seq, org, device, metric, ts, value, quality, correction, status, error, created,
     attempts, retry) = row  # fmt: skip
    return QuarantinedReading(
        id_, seq, org, device, metric, ts, value, Quality(quality), bool(correction), status,
        msgspec.json.decode(error) if error else None, created, attempts, bool(retry),
    )  # fmt: skip


def quarantine_batch(
    conn: apsw.Connection, first: int, status: int, error: Any
) -> tuple[list[QuarantinedReading], int]:
    """Move a refused batch's readings into quarantine with the upstream's answer, and let
    the watermark pass them; returns them and the synced watermark."""
    last = conn.execute(
        "SELECT last_seq FROM sync_batches WHERE first_seq = ?", (first,)
    ).fetchone()
    if last is None:
        return [], synced_seq(conn)
    moved = []
    ts = now_ms()
    encoded = msgspec.json.encode(error).decode()
    for item in outbox_items(conn, first, last[0]):
        row = (ids.new_id("qrn"), item.seq, item.org_id, item.device_id, item.metric,
               item.ts_ms, item.value, int(item.quality), int(item.correction), status,
               encoded, ts, 1, 0)  # fmt: skip
        conn.execute(
            f"INSERT INTO quarantine ({_Q_COLUMNS}) VALUES ({', '.join('?' * 14)}) "
            "ON CONFLICT (seq) DO NOTHING",
            row,
        )
        moved.append(_quarantined(row))
    return moved, ack_batches(conn, [first])


def quarantine_page(
    conn: apsw.Connection, org_id: str, after: tuple[str] | None, limit: int
) -> list[QuarantinedReading]:
    """The org's quarantined readings, oldest first."""
    rows = conn.execute(
        f"SELECT {_Q_COLUMNS} FROM quarantine WHERE org_id = ? AND id > ? ORDER BY id LIMIT ?",
        (org_id, after[0] if after else "", limit),
    )
    return [_quarantined(row) for row in rows]


def quarantined(conn: apsw.Connection, org_id: str, item_id: str) -> QuarantinedReading | None:
    """One quarantined reading of the org."""
    row = conn.execute(
        f"SELECT {_Q_COLUMNS} FROM quarantine WHERE id = ? AND org_id = ?", (item_id, org_id)
    ).fetchone()
    return None if row is None else _quarantined(row)


def request_retry(conn: apsw.Connection, org_id: str, item_id: str) -> bool:
    """Ask the agent to send a quarantined reading again; False if there is no such item."""
    conn.execute("UPDATE quarantine SET retry = 1 WHERE id = ? AND org_id = ?", (item_id, org_id))
    return conn.changes() > 0


def retry_requested(conn: apsw.Connection, limit: int) -> list[QuarantinedReading]:
    """Quarantined readings waiting to be sent again."""
    rows = conn.execute(
        f"SELECT {_Q_COLUMNS} FROM quarantine WHERE retry = 1 ORDER BY seq LIMIT ?", (limit,)
    )
    return [_quarantined(row) for row in rows]


def retried(conn: apsw.Connection, item_id: str, status: int | None, error: Any) -> None:
    """Record a retry's outcome: gone when accepted, else kept with the new answer."""
    if status is not None and 200 <= status < 300:
        conn.execute("DELETE FROM quarantine WHERE id = ?", (item_id,))
        return
    conn.execute(
        "UPDATE quarantine SET retry = 0, attempts = attempts + 1, status = ?, error = ? "
        "WHERE id = ?",
        (status, msgspec.json.encode(error).decode(), item_id),
    )


def discard(conn: apsw.Connection, org_id: str, item_id: str) -> QuarantinedReading | None:
    """Drop a quarantined reading for good; returns it (None if there was none)."""
    found = quarantined(conn, org_id, item_id)
    if found is not None:
        conn.execute("DELETE FROM quarantine WHERE id = ?", (item_id,))
    return found


def quarantine_count(conn: apsw.Connection) -> int:
    return conn.execute("SELECT count(*) FROM quarantine").fetchone()[0]


def pull_watermark(conn: apsw.Connection, resource: str) -> tuple[int, str] | None:
    """The (updated_at, id) of the last row pulled of a resource."""
    row = conn.execute(
        "SELECT updated_at, id FROM sync_pulls WHERE resource = ?", (resource,)
    ).fetchone()
    return None if row is None else (row[0], row[1])


def set_pull_watermark(conn: apsw.Connection, resource: str, updated_at: int, id_: str) -> None:
    conn.execute(
        "INSERT INTO sync_pulls (resource, updated_at, id) VALUES (?, ?, ?) "
        "ON CONFLICT (resource) DO UPDATE SET updated_at = excluded.updated_at, id = excluded.id",
        (resource, updated_at, id_),
    )


def upstream_devices(conn: apsw.Connection) -> dict[str, str]:
    """The devices the upstream is known to hold, with their origin (local or upstream)."""
    return dict(conn.execute("SELECT device_id, origin FROM sync_devices"))


def mark_upstream_device(conn: apsw.Connection, device_id: str, origin: str) -> None:
    conn.execute(
        "INSERT INTO sync_devices (device_id, origin, known_at) VALUES (?, ?, ?) "
        "ON CONFLICT DO NOTHING",
        (device_id, origin, now_ms()),
    )
