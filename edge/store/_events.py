"""SQL over events: what technicians should see, newest first."""

from __future__ import annotations

from typing import Any

import apsw
import msgspec

from edge.models import Event

_COLUMNS = "id, org_id, device_id, type, severity, message, ts, data"


def event_row(
    event_id: str,
    org_id: str,
    type_: str,
    severity: str,
    message: str,
    ts_ms: int,
    device_id: str | None = None,
    data: dict[str, Any] | None = None,
) -> tuple[Any, ...]:
    """An events row in column order."""
    payload = msgspec.json.encode(data or {}).decode()
    return (event_id, org_id, device_id, type_, severity, message, ts_ms, payload)


def insert_events(conn: apsw.Connection, rows: list[tuple[Any, ...]]) -> None:
    """Insert rows made by `event_row`."""
    conn.executemany(f"INSERT INTO events ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)


def recent(conn: apsw.Connection, org_id: str, limit: int) -> list[Event]:
    """The org's newest events, newest first."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM events WHERE org_id = ? ORDER BY ts DESC, id DESC LIMIT ?",
        (org_id, limit),
    )
    return [
        Event(
            id=event_id,
            org_id=org,
            device_id=device,
            type=type_,
            severity=severity,
            message=message,
            ts_ms=ts,
            data=msgspec.json.decode(data),
        )
        for event_id, org, device, type_, severity, message, ts, data in rows
    ]
