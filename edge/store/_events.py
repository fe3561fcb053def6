"""SQL over events: what technicians should see, newest first."""

from __future__ import annotations

from typing import Any

import apsw
import msgspec

from edge.models import Event
from edge.store._catalog import device_visible

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


def page(
    conn: apsw.Connection,
    reach: tuple[str, str, str],
    where: dict[str, Any],
    after: tuple[int, str] | None,
    limit: int,
) -> list[Event]:
    """Events newest first, filtered by type, severity, device, acknowledgement and window;
    an alarm event carries its alarm's acknowledged and cleared state."""
    after_ts, after_id = after if after is not None else (2**62, "~")
    rows = conn.execute(
        "SELECT e.id, e.org_id, e.device_id, e.type, e.severity, e.message, e.ts, e.data, "
        "a.acked_at IS NOT NULL, a.cleared_at IS NOT NULL, a.id IS NOT NULL "
        "FROM events AS e LEFT JOIN alarms AS a ON a.id = e.data ->> '$.alarm_id' "
        f"WHERE e.org_id = ?1 AND {device_visible('e.device_id')} "
        "AND (?4 IS NULL OR e.type = ?4) AND (?5 IS NULL OR e.severity = ?5) "
        "AND (?6 IS NULL OR e.device_id = ?6) "
        "AND (?7 IS NULL OR (a.id IS NOT NULL AND (a.acked_at IS NOT NULL) = ?7)) "
        "AND (?8 IS NULL OR e.ts >= ?8) AND (?9 IS NULL OR e.ts < ?9) "
        "AND (e.ts, e.id) < (?10, ?11) ORDER BY e.ts DESC, e.id DESC LIMIT ?12",
        (*reach, where.get("type"), where.get("severity"), where.get("device_id"),
         where.get("acknowledged"), where.get("from"), where.get("to"), after_ts, after_id,
         limit),
    )  # fmt: skip
    return [
        Event(
            id=event_id, org_id=org, device_id=device, type=type_, severity=severity,
            message=message, ts_ms=ts, data=msgspec.json.decode(data),
            acknowledged=bool(acked) if is_alarm else None,
            cleared=bool(cleared) if is_alarm else None,
        )
        for (event_id, org, device, type_, severity, message, ts, data, acked, cleared,
             is_alarm) in rows
    ]  # fmt: skip
