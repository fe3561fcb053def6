"""SQL over components: a device's parts, visible to whoever may see the device."""

from __future__ import annotations

from typing import Any, Final

import apsw
import msgspec

from edge import ids
from edge.models import Component, Owner, now_ms, org_of
from edge.store._catalog import (
    NotFound,
    Refused,
    check_change,
    device,
    device_visible,
    reach,
)
from edge.store._points import points

_COLUMNS: Final = (
    "id, org_id, device_id, name, kind, serial_number, sensor_ids, created_at, updated_at, "
    "deleted_at, version"
)
MUTABLE: Final = frozenset({"name", "kind", "serial_number", "sensor_ids"})


def _component(row: tuple) -> Component:
    (id_, org, device_id, name, kind, serial, sensors, created, updated, deleted,
     version) = row  # fmt: skip
    return Component(id_, org, device_id, name, kind, serial, msgspec.json.decode(sensors),
                     created, updated, deleted, version)  # fmt: skip


def _check_sensors(conn: apsw.Connection, owner: Owner, made: Component) -> None:
    known = {p.uid for p in points(conn, owner, made.device_id)}
    strangers = [s for s in made.sensor_ids if s not in known]
    if strangers:
        raise Refused(f"sensor {strangers[0]} is not a point of device {made.device_id}")


def create(conn: apsw.Connection, owner: Owner, new: Component) -> Component:
    """Add a part to a device the owner may see; its sensors must be that device's points."""
    device(conn, owner, new.device_id)
    ts = now_ms()
    made = msgspec.structs.replace(
        new, id=ids.new_id("cmp"), org_id=org_of(owner), created_at=ts, updated_at=ts, version=1
    )
    _check_sensors(conn, owner, made)
    conn.execute(
        f"INSERT INTO components ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, 1)",
        (made.id, made.org_id, made.device_id, made.name, made.kind, made.serial_number,
         msgspec.json.encode(made.sensor_ids).decode(), ts, ts),
    )  # fmt: skip
    return made


def get(conn: apsw.Connection, owner: Owner, component_id: str) -> Component:
    """A live component of a device the owner may see, or NotFound."""
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM components WHERE org_id = ?1 AND id = ?4 "
        f"AND deleted_at IS NULL AND {device_visible('components.device_id')}",
        (*reach(owner), component_id),
    ).fetchone()
    if row is None:
        raise NotFound(f"no component {component_id}")
    return _component(row)


def page(
    conn: apsw.Connection,
    owner: Owner,
    device_id: str | None,
    updated_since: int | None,
    after: tuple[int, str] | None,
    limit: int,
) -> list[Component]:
    """Components in (updated_at, id) order; with updated_since, deleted ones too."""
    after_ts, after_id = after if after is not None else (-1, "")
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM components WHERE org_id = ?1 "
        f"AND {device_visible('components.device_id')} AND (?4 IS NULL OR device_id = ?4) "
        "AND ((?5 IS NULL AND deleted_at IS NULL) OR updated_at > ?5) "
        "AND (updated_at, id) > (?6, ?7) ORDER BY updated_at, id LIMIT ?8",
        (*reach(owner), device_id, updated_since, after_ts, after_id, limit),
    )
    return [_component(row) for row in rows]


def update(
    conn: apsw.Connection,
    owner: Owner,
    component_id: str,
    changes: dict[str, Any],
    expected_version: int | None,
) -> Component:
    """Change a component's fields (Conflict if `expected_version` is stale)."""
    current = get(conn, owner, component_id)
    check_change("component", current, changes, MUTABLE, expected_version)
    try:
        updated = msgspec.convert(
            {**msgspec.to_builtins(current), **changes,
             "updated_at": max(now_ms(), current.updated_at + 1),
             "version": current.version + 1},
            Component,
        )  # fmt: skip
    except msgspec.ValidationError as error:
        raise Refused(str(error).replace("`", "")) from None
    _check_sensors(conn, owner, updated)
    conn.execute(
        "UPDATE components SET name = ?, kind = ?, serial_number = ?, sensor_ids = ?, "
        "updated_at = ?, version = ? WHERE id = ?",
        (updated.name, updated.kind, updated.serial_number,
         msgspec.json.encode(updated.sensor_ids).decode(), updated.updated_at, updated.version,
         component_id),
    )  # fmt: skip
    return updated


def delete(conn: apsw.Connection, owner: Owner, component_id: str) -> Component:
    """Soft-delete a component; `updated_since` listings show it as deleted."""
    current = get(conn, owner, component_id)
    ts = max(now_ms(), current.updated_at + 1)
    conn.execute(
        "UPDATE components SET deleted_at = ?, updated_at = ?, version = version + 1 WHERE id = ?",
        (ts, ts, component_id),
    )
    return msgspec.structs.replace(
        current, deleted_at=ts, updated_at=ts, version=current.version + 1
    )


def upsert(conn: apsw.Connection, org_id: str, row: dict[str, Any], sensor_keys: list[str]) -> bool:
    """Create or update a component by id as pulled from the upstream, its sensors named by
    their keys on the device; False if the device is not here (yet)."""
    if not conn.execute(
        "SELECT 1 FROM devices WHERE id = ? AND org_id = ?", (row["device_id"], org_id)
    ).fetchone():
        return False
    by_key = {p.key: p.uid for p in points(conn, org_id, row["device_id"])}
    sensors = [by_key[k] for k in sensor_keys if k in by_key]
    ts = now_ms()
    conn.execute(
        f"INSERT INTO components ({_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8, ?9, 1) "
        "ON CONFLICT (id) DO UPDATE SET name = excluded.name, kind = excluded.kind, "
        "serial_number = excluded.serial_number, sensor_ids = excluded.sensor_ids, "
        "updated_at = excluded.updated_at, deleted_at = excluded.deleted_at, "
        "version = components.version + 1 WHERE components.org_id = excluded.org_id",
        (row["id"], org_id, row["device_id"], row["name"], row.get("kind"),
         row.get("serial_number"), msgspec.json.encode(sensors).decode(), ts,
         ts if row.get("deleted_at") else None),
    )  # fmt: skip
    return True
