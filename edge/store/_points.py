"""SQL over points: a device's measurements by key, created with the device, found by
(device, key) for ingest, and checked against the owner before their readings are read.

Points belong to devices, so every query narrows by the owner's reach as the
device queries of `_catalog` do.
"""

from __future__ import annotations

import apsw
import msgspec

from edge import ids
from edge.models import Owner, Point, now_ms, org_of
from edge.store._catalog import (
    NotFound,
    Refused,
    device,
    device_visible,
    reach,
    require,
    to_json,
    within_reach,
)

_POINT_COLUMNS = (
    "id, uid, org_id, device_id, key, unit, data_type, interval_s, config, "
    "created_at, updated_at, deleted_at"
)


def _point(row: tuple) -> Point:
    (id_, uid, org, device_id, key, unit, data_type, interval, config, created, updated,
     deleted) = row  # fmt: skip
    return Point(
        id_, uid, org, device_id, key, unit, data_type, interval,
        msgspec.json.decode(config), created, updated, deleted,
    )  # fmt: skip


def create_points(conn: apsw.Connection, org_id: str, new: list[Point]) -> list[Point]:
    """Insert points of one org's devices; ids are assigned here."""
    ts = now_ms()
    created = []
    for point in new:
        require(conn, "devices", org_id, point.device_id)
        try:
            conn.execute(
                "INSERT INTO points (uid, org_id, device_id, key, unit, data_type, interval_s, "
                "config, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    point.uid or ids.new_id("sen"),
                    org_id,
                    point.device_id,
                    point.key,
                    point.unit,
                    point.data_type,
                    point.interval_s,
                    to_json(point.config),
                    ts,
                    ts,
                ),
            )
        except apsw.ConstraintError:
            # Keys are unique per device: a repeated key is the caller's mistake, said plainly.
            raise Refused(f"points: key {point.key} is given twice") from None
        row = conn.execute(
            f"SELECT {_POINT_COLUMNS} FROM points WHERE id = ?",
            (conn.last_insert_rowid(),),
        ).fetchone()
        created.append(_point(row))
    return created


_POINT_VISIBLE = device_visible("points.device_id")


def points(conn: apsw.Connection, owner: Owner, device_id: str | None = None) -> list[Point]:
    """The org's (boundary's) live points, of one device if given, by device and key."""
    rows = conn.execute(
        f"SELECT {_POINT_COLUMNS} FROM points WHERE org_id = ?1 AND {_POINT_VISIBLE} "
        "AND (?4 IS NULL OR device_id = ?4) AND deleted_at IS NULL ORDER BY device_id, key",
        (*reach(owner), device_id),
    )
    return [_point(row) for row in rows]


def point_in_org(conn: apsw.Connection, owner: Owner, point_id: int) -> None:
    """Raise NotFound unless the point belongs to the org (and boundary)."""
    found = conn.execute(
        f"SELECT 1 FROM points WHERE org_id = ?1 AND {_POINT_VISIBLE} AND id = ?4",
        (*reach(owner), point_id),
    ).fetchone()
    if not found:
        raise NotFound(f"no point {point_id}")


def live_point_ids(conn: apsw.Connection) -> set[int]:
    """Ids of every point that may receive readings."""
    return {row[0] for row in conn.execute("SELECT id FROM points WHERE deleted_at IS NULL")}


def point_ids(
    conn: apsw.Connection, owner: Owner, pairs: set[tuple[str, str]], create: bool
) -> tuple[dict[tuple[str, str], int], list[tuple[str, str]]]:
    """Point ids of (device id, key) pairs in the org, creating missing points of live devices.

    Returns the ids found (or made) and the pairs whose device is not one of the org's.
    """
    found: dict[tuple[str, str], int] = {}
    unknown: list[tuple[str, str]] = []
    live: dict[str, bool] = {}
    ts = now_ms()
    org_id = org_of(owner)
    for device_id, key in sorted(pairs):
        if device_id not in live:
            try:
                live[device_id] = bool(device(conn, owner, device_id))
            except NotFound:
                live[device_id] = False
        if not live[device_id]:
            unknown.append((device_id, key))
            continue
        row = conn.execute(
            "SELECT id FROM points WHERE device_id = ? AND key = ? AND org_id = ? "
            "AND deleted_at IS NULL",
            (device_id, key, org_id),
        ).fetchone()
        if row is not None:
            found[device_id, key] = row[0]
            continue
        if not create:
            unknown.append((device_id, key))
            continue
        conn.execute(
            "INSERT INTO points (uid, org_id, device_id, key, data_type, interval_s, config, "
            "created_at, updated_at) VALUES (?, ?, ?, ?, 'float64', 60.0, '{}', ?, ?)",
            (ids.new_id("sen"), org_id, device_id, key, ts, ts),
        )
        found[device_id, key] = conn.last_insert_rowid()
    return found, unknown


def find_points(conn: apsw.Connection, owner: Owner, pairs_json: str) -> dict[tuple[str, str], int]:
    """Ids of the live points of live devices named by a JSON array of [device id, key]."""
    rows = conn.execute(
        "SELECT p.device_id, p.key, p.id FROM json_each(?4) AS j "
        "CROSS JOIN points AS p ON p.device_id = j.value ->> 0 AND p.key = j.value ->> 1 "
        "JOIN devices ON devices.id = p.device_id "
        f"WHERE p.org_id = ?1 AND {within_reach(2, 3)} "
        "AND p.deleted_at IS NULL AND devices.deleted_at IS NULL",
        (*reach(owner), pairs_json),
    )
    return {(device, key): point for device, key, point in rows}
