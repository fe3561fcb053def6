"""SQL over what the gateway knows of its world: organizations, sites, groups and devices.

Every function that reads or changes a tenant's rows takes the org id and
puts it in the WHERE clause: another organization's id is simply not found.
Device queries take an `Owner`: an org id, or a `Boundary` (an API key limited
to some device groups or customers), which narrows the WHERE clause further.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import apsw
import msgspec

from edge import ids
from edge.models import (
    Boundary,
    Device,
    DeviceGroup,
    Organization,
    Owner,
    Site,
    now_ms,
    org_of,
)


class NotFound(LookupError):
    """No such object in this organization."""


class Conflict(RuntimeError):
    """The object changed since the caller read it (a stale version)."""


class Refused(ValueError):
    """A change these values (or this caller's boundary) do not allow; the message says why."""


def reach(owner: Owner) -> tuple[str, str, str]:
    """(org id, allowed group ids as JSON, allowed customer ids as JSON) of an owner."""
    if isinstance(owner, Boundary):
        return owner.org_id, to_json(list(owner.group_ids)), to_json(list(owner.customer_ids))
    return owner, "[]", "[]"


def within_reach(groups: int, customers: int) -> str:
    """SQL true for a `devices` row inside the boundary bound at ?groups and ?customers."""
    return (
        f"(?{groups} = '[]' OR devices.group_id IN (SELECT value FROM json_each(?{groups}))) "
        f"AND (?{customers} = '[]' OR devices.site_id IN (SELECT sites.id FROM sites "
        f"WHERE sites.customer_id IN (SELECT value FROM json_each(?{customers}))))"
    )


def _check_placement(
    conn: apsw.Connection, owner: Owner, site_id: str | None, group_id: str | None
) -> None:
    """A bounded caller may only put devices where it can still see them."""
    if not isinstance(owner, Boundary):
        return
    if owner.group_ids and group_id not in owner.group_ids:
        raise Refused(
            f"this key may only place devices in its groups: {', '.join(owner.group_ids)}"
        )
    if owner.customer_ids:
        row = conn.execute("SELECT customer_id FROM sites WHERE id = ?", (site_id,)).fetchone()
        if row is None or row[0] not in owner.customer_ids:
            customers = ", ".join(owner.customer_ids)
            raise Refused(f"this key may only place devices at sites of its customers: {customers}")


def to_json(value: Any) -> str:
    return msgspec.json.encode(value).decode()


def _json_or_null(value: Any) -> str | None:
    return None if value is None else to_json(value)


def ensure_organization(conn: apsw.Connection, name: str) -> Organization:
    """The organization with this name, created if it does not exist."""
    row = conn.execute(
        "SELECT id, name, created_at FROM organizations WHERE name = ?", (name,)
    ).fetchone()
    if row:
        return Organization(*row)
    org = Organization(ids.new_id("org"), name, now_ms())
    conn.execute(
        "INSERT INTO organizations (id, name, created_at) VALUES (?, ?, ?)",
        (org.id, org.name, org.created_at),
    )
    return org


def organization(conn: apsw.Connection, org_id: str) -> Organization:
    """An organization by id, or NotFound."""
    row = conn.execute(
        "SELECT id, name, created_at FROM organizations WHERE id = ?", (org_id,)
    ).fetchone()
    if row is None:
        raise NotFound(f"no organization {org_id}")
    return Organization(*row)


# Sites and device groups share one shape: (record type, columns, the SQL that keeps a
# bounded caller to its own: groups by id, sites by customer).
_GROUPINGS: dict[str, tuple[type[Site] | type[DeviceGroup], str, str]] = {
    "sites": (
        Site,
        "id, org_id, name, created_at, updated_at, deleted_at, customer_id",
        "(?3 = '[]' OR customer_id IN (SELECT value FROM json_each(?3)))",
    ),
    "device_groups": (
        DeviceGroup,
        "id, org_id, name, created_at, updated_at, deleted_at",
        "(?2 = '[]' OR id IN (SELECT value FROM json_each(?2)))",
    ),
}


def create_site(conn: apsw.Connection, owner: Owner, name: str, customer_id: str | None) -> Site:
    """A new site of the org; a caller bounded to customers must name one of them."""
    if isinstance(owner, Boundary) and owner.customer_ids and customer_id not in owner.customer_ids:
        raise Refused(
            f"this key may only add sites of its customers: {', '.join(owner.customer_ids)}"
        )
    ts = now_ms()
    made = Site(ids.new_id("site"), org_of(owner), name, ts, ts, customer_id=customer_id)
    conn.execute(
        "INSERT INTO sites (id, org_id, name, created_at, updated_at, customer_id) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (made.id, made.org_id, name, ts, ts, customer_id),
    )
    return made


def upsert_grouping(conn: apsw.Connection, table: str, org_id: str, row: dict[str, Any]) -> None:
    """Create or update a site or device group by id, as pulled from the upstream (a row with
    `deleted_at` set is soft-deleted here too)."""
    ts = now_ms()
    deleted = ts if row.get("deleted_at") else None
    customer = row.get("customer_id") if table == "sites" else None
    conn.execute(
        f"INSERT INTO {table} (id, org_id, name, created_at, updated_at, deleted_at) "
        "VALUES (?1, ?2, ?3, ?4, ?4, ?5) ON CONFLICT (id) DO UPDATE SET name = excluded.name, "
        "updated_at = excluded.updated_at, deleted_at = excluded.deleted_at "
        "WHERE org_id = excluded.org_id",
        (row["id"], org_id, row["name"], ts, deleted),
    )
    if table == "sites":
        conn.execute(
            "UPDATE sites SET customer_id = ? WHERE id = ? AND org_id = ?",
            (customer, row["id"], org_id),
        )


def create_device_group(conn: apsw.Connection, owner: Owner, name: str) -> DeviceGroup:
    """A new device group of the org; a caller bounded to groups cannot add one."""
    if isinstance(owner, Boundary) and owner.group_ids:
        raise Refused("this key is limited to its device groups and cannot add one")
    ts = now_ms()
    made = DeviceGroup(ids.new_id("grp"), org_of(owner), name, ts, ts)
    conn.execute(
        "INSERT INTO device_groups (id, org_id, name, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, ?)",
        (made.id, made.org_id, name, ts, ts),
    )
    return made


def grouping_page(
    conn: apsw.Connection,
    table: str,
    owner: Owner,
    updated_since: int | None,
    after: tuple[int, str] | None,
    limit: int,
) -> list[Any]:
    """Sites or device groups in (updated_at, id) order, deleted ones only to updated_since."""
    record, columns, within = _GROUPINGS[table]
    after_ts, after_id = after if after is not None else (-1, "")
    rows = conn.execute(
        f"SELECT {columns} FROM {table} WHERE org_id = ?1 AND {within} "
        "AND ((?4 IS NULL AND deleted_at IS NULL) OR updated_at > ?4) "
        "AND (updated_at, id) > (?5, ?6) ORDER BY updated_at, id LIMIT ?7",
        (*reach(owner), updated_since, after_ts, after_id, limit),
    )
    return [record(*row) for row in rows]


def grouping(conn: apsw.Connection, table: str, owner: Owner, object_id: str) -> Any:
    """One live site or device group of the org (and boundary), or NotFound."""
    record, columns, within = _GROUPINGS[table]
    row = conn.execute(
        f"SELECT {columns} FROM {table} WHERE org_id = ?1 AND {within} "
        "AND id = ?4 AND deleted_at IS NULL",
        (*reach(owner), object_id),
    ).fetchone()
    if row is None:
        raise NotFound(f"no {table[:-1].replace('_', ' ')} {object_id}")
    return record(*row)


def require(conn: apsw.Connection, table: str, org_id: str, object_id: str | None) -> None:
    if object_id is None:
        return
    found = conn.execute(
        f"SELECT 1 FROM {table} WHERE id = ? AND org_id = ? AND deleted_at IS NULL",
        (object_id, org_id),
    ).fetchone()
    if not found:
        raise NotFound(f"no {table[:-1].replace('_', ' ')} {object_id}")


_DEVICE_COLUMNS = (
    "id, org_id, name, type, site_id, group_id, connection, profile, tags, enabled, "
    "created_at, updated_at, deleted_at, version, movement"
)


def create_device(conn: apsw.Connection, device: Device, owner: Owner | None = None) -> Device:
    """Insert a device; its site and group must belong to the same org (and boundary).

    A given id is kept (a device registered by a downstream gateway keeps its id); an id
    already taken is a Conflict.
    """
    if device.id and conn.execute("SELECT 1 FROM devices WHERE id = ?", (device.id,)).fetchone():
        raise Conflict(f"device {device.id} already exists")
    require(conn, "sites", device.org_id, device.site_id)
    require(conn, "device_groups", device.org_id, device.group_id)
    _check_placement(conn, owner or device.org_id, device.site_id, device.group_id)
    ts = now_ms()
    device = msgspec.structs.replace(
        device, id=device.id or ids.new_id("dev"), created_at=ts, updated_at=ts, version=1
    )
    conn.execute(
        f"INSERT INTO devices ({_DEVICE_COLUMNS}) VALUES ({', '.join('?' * 15)})",
        (
            device.id,
            device.org_id,
            device.name,
            device.type,
            device.site_id,
            device.group_id,
            to_json(device.connection),
            device.profile,
            to_json(device.tags),
            int(device.enabled),
            ts,
            ts,
            None,
            1,
            _json_or_null(device.movement),
        ),
    )
    return device


_MUTABLE_DEVICE_FIELDS = frozenset(
    {"name", "site_id", "group_id", "connection", "profile", "tags", "enabled", "movement"}
)


def check_change(
    kind: str, current: Any, changes: dict[str, Any], mutable: frozenset[str], expected: int | None
) -> None:
    """Refused for a field that cannot change; Conflict if `expected` is not the current
    version (someone changed the object since the caller read it)."""
    unknown = set(changes) - mutable
    if unknown:
        raise Refused(f"{kind} field {sorted(unknown)[0]!r} cannot be changed")
    if expected is not None and current.version != expected:
        raise Conflict(f"{kind} {current.id} is at version {current.version}, not {expected}")


def update_device(
    conn: apsw.Connection,
    owner: Owner,
    device_id: str,
    changes: dict[str, Any],
    expected_version: int | None = None,
) -> Device:
    """Apply changes to a live device of the org; bumps version and updated_at.

    With `expected_version`, a device changed since (another version) raises Conflict.
    """
    current = device(conn, owner, device_id)
    check_change("device", current, changes, _MUTABLE_DEVICE_FIELDS, expected_version)
    org_id = current.org_id
    require(conn, "sites", org_id, changes.get("site_id"))
    require(conn, "device_groups", org_id, changes.get("group_id"))
    _check_placement(
        conn, owner, changes.get("site_id", current.site_id),
        changes.get("group_id", current.group_id),
    )  # fmt: skip
    updated = msgspec.structs.replace(
        current, **changes, updated_at=max(now_ms(), current.updated_at + 1),
        version=current.version + 1,
    )  # fmt: skip
    conn.execute(
        "UPDATE devices SET name = ?, site_id = ?, group_id = ?, connection = ?, profile = ?, "
        "tags = ?, enabled = ?, movement = ?, updated_at = ?, version = ? "
        "WHERE id = ? AND org_id = ?",
        (
            updated.name,
            updated.site_id,
            updated.group_id,
            to_json(updated.connection),
            updated.profile,
            to_json(updated.tags),
            int(updated.enabled),
            _json_or_null(updated.movement),
            updated.updated_at,
            updated.version,
            device_id,
            org_id,
        ),
    )
    return updated


def _device(row: tuple) -> Device:
    (id_, org, name, type_, site, group, connection, profile, tags, enabled, created, updated,
     deleted, version, movement) = row  # fmt: skip
    return Device(
        id=id_,
        org_id=org,
        name=name,
        type=type_,
        site_id=site,
        group_id=group,
        connection=msgspec.json.decode(connection),
        profile=profile,
        tags=msgspec.json.decode(tags),
        enabled=bool(enabled),
        created_at=created,
        updated_at=updated,
        deleted_at=deleted,
        version=version,
        movement=msgspec.json.decode(movement) if movement else None,
    )


def device(conn: apsw.Connection, owner: Owner, device_id: str) -> Device:
    """A live device of the org (and boundary), or NotFound."""
    row = conn.execute(
        f"SELECT {_DEVICE_COLUMNS} FROM devices WHERE org_id = ?1 AND {within_reach(2, 3)} "
        "AND id = ?4 AND deleted_at IS NULL",
        (*reach(owner), device_id),
    ).fetchone()
    if row is None:
        raise NotFound(f"no device {device_id}")
    return _device(row)


def devices(conn: apsw.Connection, org_id: str) -> list[Device]:
    """The org's live devices, by name."""
    rows = conn.execute(
        f"SELECT {_DEVICE_COLUMNS} FROM devices "
        "WHERE org_id = ? AND deleted_at IS NULL ORDER BY name, id",
        (org_id,),
    )
    return [_device(row) for row in rows]


@dataclass(frozen=True, slots=True)
class DeviceFilter:
    """What a device listing asks for; every field narrows it (AND)."""

    site_id: str | None = None
    type: str | None = None
    tag: str | None = None
    group_id: str | None = None
    updated_since: int | None = None


def device_page(
    conn: apsw.Connection,
    owner: Owner,
    where: DeviceFilter,
    after: tuple[int, str] | None,
    limit: int,
) -> list[Device]:
    """The org's devices in (updated_at, id) order after the keyset `after`.

    With `updated_since`, soft-deleted devices are included (their `deleted_at` set), so
    an incremental sync sees deletions; without it, only live devices are listed.
    """
    after_ts, after_id = after if after is not None else (-1, "")
    org, groups, customers = reach(owner)
    rows = conn.execute(
        f"SELECT {_DEVICE_COLUMNS} FROM devices WHERE org_id = ?1 "
        "AND (?2 IS NULL OR site_id = ?2) AND (?3 IS NULL OR type = ?3) "
        "AND (?4 IS NULL OR EXISTS (SELECT 1 FROM json_each(devices.tags) WHERE value = ?4)) "
        "AND (?5 IS NULL OR group_id = ?5) "
        "AND ((?6 IS NULL AND deleted_at IS NULL) OR updated_at > ?6) "
        f"AND {within_reach(10, 11)} "
        "AND (updated_at, id) > (?7, ?8) ORDER BY updated_at, id LIMIT ?9",
        (org, where.site_id, where.type, where.tag, where.group_id, where.updated_since,
         after_ts, after_id, limit, groups, customers),
    )  # fmt: skip
    return [_device(row) for row in rows]


def count_devices(conn: apsw.Connection, owner: Owner) -> int:
    """How many live devices the org (boundary) has."""
    return conn.execute(
        f"SELECT count(*) FROM devices WHERE org_id = ?1 AND {within_reach(2, 3)} "
        "AND deleted_at IS NULL",
        reach(owner),
    ).fetchone()[0]


def delete_device(conn: apsw.Connection, owner: Owner, device_id: str) -> Device:
    """Soft-delete a live device (its readings stay, per retention); returns it as deleted."""
    current = device(conn, owner, device_id)
    org_id = current.org_id
    ts = max(now_ms(), current.updated_at + 1)
    conn.execute(
        "UPDATE devices SET deleted_at = ?, updated_at = ?, version = version + 1 "
        "WHERE id = ? AND org_id = ?",
        (ts, ts, device_id, org_id),
    )
    return msgspec.structs.replace(
        current, deleted_at=ts, updated_at=ts, version=current.version + 1
    )


def device_visible(column: str) -> str:
    """SQL true when the device id in `column` is one the owner bound at ?1..?3 (by `reach`)
    may see; an unbounded owner runs no subquery."""
    devices = f"SELECT devices.id FROM devices WHERE devices.org_id = ?1 AND {within_reach(2, 3)}"
    return f"(?2 = '[]' AND ?3 = '[]' OR {column} IN ({devices}))"
