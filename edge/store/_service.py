"""SQL over maintenance records (assets, customers, vendors, parts, appointments, service
reports and visits): one table, one set of queries, each kind described by its `Kind`.

A record's fields live whole in `body` (JSON); the few a listing filters on are mirrored
into indexed columns. A bounded key (groups, customers) is narrowed by the kind's reach:
assets by their own group and customer, linked records (reports, visits, appointments)
through the asset, device and customer they name, customers by the key's customers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

import apsw
import msgspec

from edge import ids
from edge.maintenance import KINDS, Kind, Record
from edge.models import Boundary, Owner, now_ms, org_of
from edge.store._catalog import (
    Conflict,
    NotFound,
    Refused,
    check_change,
    device,
    device_visible,
    grouping,
    reach,
)

COLUMNS: Final = ("name", "asset_id", "device_id", "parent_id", "group_id", "customer_id",
                  "vendor_id", "user_id", "state", "active", "at", "external_system")  # fmt: skip
_ALL: Final = ", ".join(("id", "org_id", "kind", *COLUMNS, "body", "created_at", "updated_at",
                         "deleted_at", "version", "outbox"))  # fmt: skip
_SELECT: Final = (
    "SELECT r.kind, r.id, r.org_id, r.body, r.created_at, r.updated_at, r.deleted_at, r.version "
    "FROM service_records AS r"
)
# Deep enough for any real plant; a longer chain of parents is refused rather than walked.
MAX_DEPTH: Final = 64


def _asset_within(alias: str) -> str:
    return (
        f"(?2 = '[]' OR {alias}.group_id IN (SELECT value FROM json_each(?2))) "
        f"AND (?3 = '[]' OR {alias}.customer_id IN (SELECT value FROM json_each(?3)))"
    )


_LINKED: Final = (
    "(r.asset_id IS NULL OR r.asset_id IN (SELECT a.id FROM service_records AS a "
    f"WHERE a.org_id = ?1 AND a.kind = 'assets' AND {_asset_within('a')})) "
    f"AND (r.device_id IS NULL OR {device_visible('r.device_id')}) "
    "AND (r.customer_id IS NULL OR ?3 = '[]' "
    "OR r.customer_id IN (SELECT value FROM json_each(?3)))"
)
_REACH: Final = {
    "asset": _asset_within("r"),
    "linked": _LINKED,
    "customer": "(?3 = '[]' OR r.id IN (SELECT value FROM json_each(?3)))",
    "org": "1",
}


def visible(kind: Kind) -> str:
    """SQL true for a row `r` of the kind that the owner bound at ?1..?3 may see; an
    unbounded owner evaluates no subquery."""
    return f"(?2 = '[]' AND ?3 = '[]' OR {_REACH[kind.reach]})"


@dataclass(frozen=True, slots=True)
class RecordFilter:
    """What a listing asks for: columns equal to values, `at` in [start, end), and rows
    changed after `updated_since` (deleted ones included)."""

    equal: dict[str, Any] = field(default_factory=dict)
    start: int | None = None
    end: int | None = None
    updated_since: int | None = None


def _record(row: tuple) -> Record:
    kind, id_, org, body, created, updated, deleted, version = row
    return Record(kind, id_, org, msgspec.json.decode(body), created, updated, deleted, version)


def _column_values(kind: Kind, fields: dict[str, Any]) -> list[Any]:
    by_column = {column: fields.get(name) for name, column in kind.columns.items()}
    if "active" in by_column:
        by_column["active"] = int(bool(by_column["active"]))
    return [by_column.get(column) for column in COLUMNS]


def _valid(kind: Kind, fields: dict[str, Any]) -> dict[str, Any]:
    try:
        return kind.validate(fields)
    except ValueError as error:
        raise Refused(str(error)) from None


def get(conn: apsw.Connection, owner: Owner, kind: Kind, record_id: str) -> Record:
    """A live record of the kind that the owner may see, or NotFound."""
    row = conn.execute(
        f"{_SELECT} WHERE r.org_id = ?1 AND r.kind = ?4 AND r.id = ?5 AND r.deleted_at IS NULL "
        f"AND {visible(kind)}",
        (*reach(owner), kind.name, record_id),
    ).fetchone()
    if row is None:
        raise NotFound(f"no {kind.noun.replace('_', ' ')} {record_id}")
    return _record(row)


def page(
    conn: apsw.Connection,
    owner: Owner,
    kind: Kind,
    where: RecordFilter,
    after: tuple[int, str] | None,
    limit: int,
) -> list[Record]:
    """Records of the kind in (updated_at, id) order; with updated_since, deleted ones too."""
    after_ts, after_id = after if after is not None else (-1, "")
    args: list[Any] = [*reach(owner), kind.name, where.updated_since, where.start, where.end,
                       after_ts, after_id, limit]  # fmt: skip
    equal = ""
    for column, value in where.equal.items():
        if column not in COLUMNS:
            raise ValueError(f"no column {column}")
        args.append(value)
        equal += f"AND r.{column} = ?{len(args)} "
    rows = conn.execute(
        f"{_SELECT} WHERE r.org_id = ?1 AND r.kind = ?4 AND {visible(kind)} {equal}"
        "AND ((?5 IS NULL AND r.deleted_at IS NULL) OR r.updated_at > ?5) "
        "AND (?6 IS NULL OR r.at >= ?6) AND (?7 IS NULL OR r.at < ?7) "
        "AND (r.updated_at, r.id) > (?8, ?9) ORDER BY r.updated_at, r.id LIMIT ?10",
        args,
    )
    return [_record(row) for row in rows]


def _check_refs(
    conn: apsw.Connection, owner: Owner, kind: Kind, fields: dict[str, Any], record_id: str
) -> None:
    """Every record a field names exists and is the owner's to see; an asset is not its own
    ancestor."""
    for name, target in kind.refs.items():
        value = fields.get(name)
        if value is None:
            continue
        if target == "devices":
            device(conn, owner, value)
        elif target == "device_groups":
            grouping(conn, "device_groups", owner, value)
        else:
            get(conn, owner, KINDS[target], value)
    for used in fields.get("parts_used") or ():
        get(conn, owner, KINDS["parts"], used["part_id"])
    parent = fields.get("parent_id") if kind.name == "assets" else None
    for _ in range(MAX_DEPTH):
        if parent is None:
            return
        if parent == record_id:
            raise Refused(f"asset {record_id} cannot be its own ancestor")
        row = conn.execute("SELECT parent_id FROM service_records WHERE id = ?", (parent,))
        parent = next(iter(row), (None,))[0]
    raise Refused(f"asset {record_id} would be more than {MAX_DEPTH} levels deep")


def _placed(
    conn: apsw.Connection, owner: Owner, kind: Kind, fields: dict[str, Any], new: bool
) -> dict[str, Any]:
    """The fields with an asset's group and customer taken from its device when not given,
    refused when a bounded owner could not see the result (or, limited to customers, would
    add a customer)."""
    if kind.name == "assets" and fields.get("device_id"):
        row = conn.execute(
            "SELECT d.group_id, s.customer_id FROM devices AS d LEFT JOIN sites AS s "
            "ON s.id = d.site_id WHERE d.id = ?",
            (fields["device_id"],),
        ).fetchone()
        if row is not None:
            fields = {**fields, "group_id": fields.get("group_id") or row[0],
                      "customer_id": fields.get("customer_id") or row[1]}  # fmt: skip
    if kind.pushed and not (fields.get("asset_id") or fields.get("device_id")):
        raise Refused(f"a {kind.noun.replace('_', ' ')} names an asset_id or a device_id")
    if not isinstance(owner, Boundary):
        return fields
    if kind.reach == "customer" and owner.customer_ids and new:
        raise Refused("this key is limited to its customers and cannot add one")
    if kind.name == "assets" and owner.group_ids and fields.get("group_id") not in owner.group_ids:
        raise Refused(f"this key may only place assets in its groups: {', '.join(owner.group_ids)}")
    customer = fields.get("customer_id")
    outside = customer not in owner.customer_ids and (kind.reach == "asset" or customer)
    if kind.reach in ("asset", "linked") and owner.customer_ids and outside:
        raise Refused(f"this key may only name its customers: {', '.join(owner.customer_ids)}")
    return fields


def _existing(conn: apsw.Connection, record_id: str) -> Record | None:
    row = conn.execute(f"{_SELECT} WHERE r.id = ?", (record_id,)).fetchone()
    return None if row is None else _record(row)


def create(
    conn: apsw.Connection,
    owner: Owner,
    kind: Kind,
    fields: dict[str, Any],
    record_id: str | None = None,
    outbox: bool = False,
) -> tuple[Record, bool]:
    """Add a record; (it, True). A given id already holding the same fields answers
    (that record, False), so a resent create makes no duplicate; other fields: Conflict."""
    fields = _valid(kind, fields)
    org = org_of(owner)
    if record_id is not None and not record_id.startswith(f"{kind.prefix}_"):
        raise Refused(f"a {kind.noun.replace('_', ' ')} id starts with {kind.prefix}_")
    found = _existing(conn, record_id) if record_id else None
    if "created_on" in fields and fields["created_on"] is None:
        fields["created_on"] = found.fields.get("created_on") if found else now_ms()
    if found is not None:
        if (found.org_id, found.kind, found.fields) == (org, kind.name, fields):
            return get(conn, owner, kind, found.id), False
        raise Conflict(f"{kind.noun.replace('_', ' ')} {record_id} already exists")
    made_id = record_id or ids.new_id(kind.prefix)
    fields = _placed(conn, owner, kind, fields, new=True)
    _check_refs(conn, owner, kind, fields, made_id)
    ts = now_ms()
    conn.execute(
        f"INSERT INTO service_records ({_ALL}) VALUES ({', '.join('?' * (len(COLUMNS) + 9))})",
        (made_id, org, kind.name, *_column_values(kind, fields),
         msgspec.json.encode(fields).decode(), ts, ts, None, 1, int(outbox)),
    )  # fmt: skip
    return Record(kind.name, made_id, org, fields, ts, ts, None, 1), True


def _write(conn: apsw.Connection, kind: Kind, record: Record) -> None:
    sets = ", ".join(f"{column} = ?" for column in COLUMNS)
    conn.execute(
        f"UPDATE service_records SET {sets}, body = ?, updated_at = ?, deleted_at = ?, "
        "version = ? WHERE id = ?",
        (*_column_values(kind, record.fields), msgspec.json.encode(record.fields).decode(),
         record.updated_at, record.deleted_at, record.version, record.id),
    )  # fmt: skip


def update(
    conn: apsw.Connection,
    owner: Owner,
    kind: Kind,
    record_id: str,
    changes: dict[str, Any],
    expected_version: int | None,
) -> Record:
    """Change some fields of a record (Conflict if `expected_version` is stale)."""
    current = get(conn, owner, kind, record_id)
    check_change(kind.noun, current, changes, frozenset(kind.schema.__struct_fields__),
                 expected_version)  # fmt: skip
    fields = _placed(conn, owner, kind, _valid(kind, {**current.fields, **changes}), new=False)
    _check_refs(conn, owner, kind, fields, record_id)
    updated = msgspec.structs.replace(
        current, fields=fields, updated_at=max(now_ms(), current.updated_at + 1),
        version=current.version + 1,
    )  # fmt: skip
    _write(conn, kind, updated)
    if kind.pushed:  # the upstream must hear of the change too
        conn.execute("UPDATE service_records SET outbox = 1 WHERE id = ?", (record_id,))
    return updated


def delete(conn: apsw.Connection, owner: Owner, kind: Kind, record_id: str) -> Record:
    """Soft-delete a record; `updated_since` listings show it as deleted."""
    current = get(conn, owner, kind, record_id)
    if (
        kind.name == "assets"
        and conn.execute(
            "SELECT 1 FROM service_records WHERE org_id = ? AND kind = 'assets' AND parent_id = ? "
            "AND deleted_at IS NULL",
            (current.org_id, record_id),
        ).fetchone()
    ):
        raise Refused(f"asset {record_id} has child assets; move or delete them first")
    ts = max(now_ms(), current.updated_at + 1)
    deleted = msgspec.structs.replace(
        current, deleted_at=ts, updated_at=ts, version=current.version + 1
    )
    _write(conn, kind, deleted)
    return deleted


def upsert(
    conn: apsw.Connection, org_id: str, kind: Kind, record_id: str, fields: dict[str, Any],
    deleted: bool,
) -> None:  # fmt: skip
    """Create or update a record by id as pulled from the upstream (soft-deleted if it is
    there); raises Refused if its fields do not fit the kind."""
    fields = _valid(kind, fields)
    ts = now_ms()
    sets = ", ".join(f"{column} = excluded.{column}" for column in COLUMNS)
    conn.execute(
        f"INSERT INTO service_records ({_ALL}) VALUES ({', '.join('?' * (len(COLUMNS) + 9))}) "
        f"ON CONFLICT (id) DO UPDATE SET {sets}, body = excluded.body, "
        "updated_at = max(excluded.updated_at, service_records.updated_at + 1), "
        "deleted_at = excluded.deleted_at, version = service_records.version + 1 "
        "WHERE service_records.org_id = excluded.org_id AND service_records.kind = excluded.kind",
        (record_id, org_id, kind.name, *_column_values(kind, fields),
         msgspec.json.encode(fields).decode(), ts, ts, ts if deleted else None, 1, 0),
    )  # fmt: skip


def unpushed(conn: apsw.Connection, after: tuple[int, str] | None, limit: int) -> list[Record]:
    """Records made here and not yet pushed upstream, oldest change first, after `after`
    (an (updated_at, id))."""
    after_ts, after_id = after if after is not None else (-1, "")
    rows = conn.execute(
        f"{_SELECT} INDEXED BY service_records_outbox WHERE r.outbox = 1 "
        "AND (r.updated_at, r.id) > (?, ?) ORDER BY r.updated_at, r.id LIMIT ?",
        (after_ts, after_id, limit),
    )
    return [_record(row) for row in rows]


def mark_pushed(conn: apsw.Connection, record_id: str, version: int) -> None:
    """The upstream holds this version; a later change still waits to be pushed."""
    conn.execute(
        "UPDATE service_records SET outbox = 0 WHERE id = ? AND version = ?", (record_id, version)
    )
