"""SQL over alert rules, the alarms they raise and each alarm's audit trail.

Raising and clearing an alarm record an `alarm.raised` / `alarm.cleared` event in
the same transaction, so the event log (and the webhooks that follow it) never
disagrees with the alarms table.
"""

from __future__ import annotations

from typing import Any, Final

import apsw
import msgspec

from edge import ids
from edge.models import Alarm, AlarmNote, AlertRule, Owner, now_ms, org_of
from edge.store import _events
from edge.store._catalog import NotFound, Refused, check_change, device, device_visible, reach

_RULE_COLUMNS: Final = (
    "id, org_id, name, kind, device_id, metric, params, severity, enabled, created_at, "
    "updated_at, deleted_at, version"
)
_ALARM_COLUMNS: Final = (
    "id, org_id, rule_id, device_id, metric, severity, message, value, raised_at, acked_at, "
    "acked_by, cleared_at, cleared_by, updated_at"
)
RULE_FIELDS: Final = frozenset({"name", "params", "severity", "enabled"})
# A rule with no device is the organization's (visible to bounded keys only if unbounded).
_RULE_VISIBLE: Final = device_visible("alert_rules.device_id")
_ALARM_VISIBLE: Final = device_visible("alarms.device_id")


def _rule(row: tuple) -> AlertRule:
    (id_, org, name, kind, device_id, metric, params, severity, enabled, created, updated,
     deleted, version) = row  # fmt: skip
    return AlertRule(id_, org, name, kind, device_id, metric, msgspec.json.decode(params),
                     severity, bool(enabled), created, updated, deleted, version)  # fmt: skip


def create_rule(conn: apsw.Connection, owner: Owner, rule: AlertRule) -> AlertRule:
    """Store a validated rule; its device must be one the owner may see."""
    if rule.device_id is not None:
        device(conn, owner, rule.device_id)
    elif not isinstance(owner, str) and (owner.group_ids or owner.customer_ids):
        raise Refused("this key may only add rules for devices it can see")
    ts = now_ms()
    made = msgspec.structs.replace(rule, id=ids.new_id("rul"), org_id=org_of(owner),
                                   created_at=ts, updated_at=ts, version=1)  # fmt: skip
    conn.execute(
        f"INSERT INTO alert_rules ({_RULE_COLUMNS}) VALUES ({', '.join('?' * 13)})",
        (made.id, made.org_id, made.name, made.kind, made.device_id, made.metric,
         msgspec.json.encode(made.params).decode(), made.severity, int(made.enabled), ts, ts,
         None, 1),
    )  # fmt: skip
    return made


def rule(conn: apsw.Connection, owner: Owner, rule_id: str) -> AlertRule:
    """A live rule the owner may see, or NotFound."""
    row = conn.execute(
        f"SELECT {_RULE_COLUMNS} FROM alert_rules WHERE org_id = ?1 AND {_RULE_VISIBLE} "
        "AND id = ?4 AND deleted_at IS NULL",
        (*reach(owner), rule_id),
    ).fetchone()
    if row is None:
        raise NotFound(f"no alert rule {rule_id}")
    return _rule(row)


def rule_page(
    conn: apsw.Connection,
    owner: Owner,
    updated_since: int | None,
    after: tuple[int, str] | None,
    limit: int,
) -> list[AlertRule]:
    """Rules in (updated_at, id) order; with updated_since, deleted ones too."""
    after_ts, after_id = after if after is not None else (-1, "")
    rows = conn.execute(
        f"SELECT {_RULE_COLUMNS} FROM alert_rules WHERE org_id = ?1 AND {_RULE_VISIBLE} "
        "AND ((?4 IS NULL AND deleted_at IS NULL) OR updated_at > ?4) "
        "AND (updated_at, id) > (?5, ?6) ORDER BY updated_at, id LIMIT ?7",
        (*reach(owner), updated_since, after_ts, after_id, limit),
    )
    return [_rule(row) for row in rows]


def live_rules(conn: apsw.Connection) -> list[AlertRule]:
    """Every enabled, live rule of every organization: what the engine evaluates."""
    rows = conn.execute(
        f"SELECT {_RULE_COLUMNS} FROM alert_rules WHERE deleted_at IS NULL AND enabled = 1"
    )
    return [_rule(row) for row in rows]


def update_rule(
    conn: apsw.Connection,
    owner: Owner,
    rule_id: str,
    changes: dict[str, Any],
    expected: int | None,
    check: Any,
) -> AlertRule:
    """Change a rule (`check` validates the result); Conflict if `expected` is stale."""
    current = rule(conn, owner, rule_id)
    check_change("alert rule", current, changes, RULE_FIELDS, expected)
    updated = msgspec.structs.replace(
        current, **changes, updated_at=max(now_ms(), current.updated_at + 1),
        version=current.version + 1,
    )  # fmt: skip
    check(updated)
    conn.execute(
        "UPDATE alert_rules SET name = ?, params = ?, severity = ?, enabled = ?, "
        "updated_at = ?, version = ? WHERE id = ?",
        (updated.name, msgspec.json.encode(updated.params).decode(), updated.severity,
         int(updated.enabled), updated.updated_at, updated.version, rule_id),
    )  # fmt: skip
    return updated


def delete_rule(conn: apsw.Connection, owner: Owner, rule_id: str) -> AlertRule:
    """Soft-delete a rule; its active alarms are cleared."""
    current = rule(conn, owner, rule_id)
    ts = max(now_ms(), current.updated_at + 1)
    conn.execute(
        "UPDATE alert_rules SET deleted_at = ?, updated_at = ?, version = version + 1 WHERE id = ?",
        (ts, ts, rule_id),
    )
    for alarm_id in [r[0] for r in conn.execute(
        "SELECT id FROM alarms WHERE rule_id = ? AND cleared_at IS NULL", (rule_id,)
    )]:  # fmt: skip
        clear(conn, current.org_id, alarm_id, "rule deleted", None, ts)
    return msgspec.structs.replace(current, deleted_at=ts, updated_at=ts,
                                   version=current.version + 1)  # fmt: skip


def _alarm(row: tuple, notes: list[AlarmNote] | None = None) -> Alarm:
    return Alarm(*row, notes=notes or [])


def raise_alarm(
    conn: apsw.Connection, rule_: AlertRule, message: str, value: float | None, ts: int
) -> Alarm | None:
    """Open an alarm for the rule unless one is active; records `alarm.raised`."""
    if conn.execute(
        "SELECT 1 FROM alarms WHERE rule_id = ? AND cleared_at IS NULL", (rule_.id,)
    ).fetchone():
        return None
    alarm = Alarm(ids.new_id("alm"), rule_.org_id, rule_.id, rule_.device_id, rule_.metric,
                  rule_.severity, message, value, ts, updated_at=ts)  # fmt: skip
    conn.execute(
        f"INSERT INTO alarms ({_ALARM_COLUMNS}) VALUES ({', '.join('?' * 14)})",
        msgspec.structs.astuple(alarm)[:14],
    )
    _record(conn, alarm, "alarm.raised", message, ts, {"value": value, "rule": rule_.name})
    return alarm


def _record(
    conn: apsw.Connection, alarm: Alarm, type_: str, message: str, ts: int, extra: dict[str, Any]
) -> None:
    data = {"alarm_id": alarm.id, "rule_id": alarm.rule_id, "metric": alarm.metric, **extra}
    row = _events.event_row(ids.new_id("evt"), alarm.org_id, type_, alarm.severity, message, ts,
                            alarm.device_id, data)  # fmt: skip
    _events.insert_events(conn, [row])


def active_rule_ids(conn: apsw.Connection) -> set[str]:
    """Rules with an active alarm (the engine's state after a restart)."""
    return {r[0] for r in conn.execute("SELECT rule_id FROM alarms WHERE cleared_at IS NULL")}


def clear_rule(conn: apsw.Connection, rule_: AlertRule, message: str, ts: int) -> Alarm | None:
    """Close the rule's active alarm because its condition cleared."""
    row = conn.execute(
        "SELECT id FROM alarms WHERE rule_id = ? AND cleared_at IS NULL", (rule_.id,)
    ).fetchone()
    if row is None:
        return None
    return clear(conn, rule_.org_id, row[0], "rule", message, ts)


def clear(
    conn: apsw.Connection, owner: Owner, alarm_id: str, actor: str, text: str | None, ts: int
) -> Alarm:
    """Close an active alarm (by its rule or by someone); records `alarm.cleared`."""
    current = alarm(conn, owner, alarm_id)
    if not current.active:
        raise Refused(f"alarm {alarm_id} is already cleared")
    conn.execute(
        "UPDATE alarms SET cleared_at = ?, cleared_by = ?, updated_at = ? WHERE id = ?",
        (ts, actor, ts, current.id),
    )
    _note(conn, current.id, "clear", actor, text, ts)
    message = f"Cleared: {current.message}"
    _record(conn, current, "alarm.cleared", message, ts, {"cleared_by": actor})
    return alarm(conn, owner, current.id)


def acknowledge(
    conn: apsw.Connection, owner: Owner, alarm_id: str, actor: str, text: str | None
) -> Alarm:
    """Acknowledge an alarm (once); the trail records who and when."""
    current = alarm(conn, owner, alarm_id)
    if current.acked_at is not None:
        raise Refused(f"alarm {alarm_id} was acknowledged already by {current.acked_by}")
    ts = now_ms()
    conn.execute(
        "UPDATE alarms SET acked_at = ?, acked_by = ?, updated_at = ? WHERE id = ?",
        (ts, actor, ts, current.id),
    )
    _note(conn, current.id, "ack", actor, text, ts)
    return alarm(conn, owner, current.id)


def comment(conn: apsw.Connection, owner: Owner, alarm_id: str, actor: str, text: str) -> Alarm:
    """Attach an operator's note to an alarm's trail."""
    current = alarm(conn, owner, alarm_id)
    ts = now_ms()
    _note(conn, current.id, "comment", actor, text, ts)
    conn.execute("UPDATE alarms SET updated_at = ? WHERE id = ?", (ts, current.id))
    return alarm(conn, owner, current.id)


def _note(
    conn: apsw.Connection, alarm_id: str, action: str, actor: str, text: str | None, ts: int
) -> None:
    conn.execute(
        "INSERT INTO alarm_notes (id, alarm_id, action, actor, text, ts) VALUES (?, ?, ?, ?, ?, ?)",
        (ids.new_id("note"), alarm_id, action, actor, text, ts),
    )


def alarm(conn: apsw.Connection, owner: Owner, alarm_id: str) -> Alarm:
    """One alarm the owner may see, with its trail; also found by its `alarm.*` event id."""
    with conn:  # one snapshot: the row and its trail must not straddle a commit
        return _alarm_with_trail(conn, owner, alarm_id)


def _alarm_with_trail(conn: apsw.Connection, owner: Owner, alarm_id: str) -> Alarm:
    row = conn.execute(
        f"SELECT {_ALARM_COLUMNS} FROM alarms WHERE org_id = ?1 AND {_ALARM_VISIBLE} AND id = "
        "coalesce((SELECT data ->> '$.alarm_id' FROM events WHERE id = ?4 AND org_id = ?1), ?4)",
        (*reach(owner), alarm_id),
    ).fetchone()
    if row is None:
        raise NotFound(f"no alarm {alarm_id}")
    notes = [
        AlarmNote(*r)
        for r in conn.execute(
            "SELECT id, alarm_id, action, actor, text, ts FROM alarm_notes WHERE alarm_id = ? "
            "ORDER BY ts, id",
            (row[0],),
        )
    ]
    return _alarm(row, notes)


def alarm_page(
    conn: apsw.Connection,
    owner: Owner,
    state: str | None,
    device_id: str | None,
    rule_id: str | None,
    window: tuple[int | None, int | None],
    after: tuple[int, str] | None,
    limit: int,
) -> list[Alarm]:
    """Alarms newest first; `state` active, acknowledged (and active) or cleared."""
    after_ts, after_id = after if after is not None else (2**62, "~")
    rows = conn.execute(
        f"SELECT {_ALARM_COLUMNS} FROM alarms WHERE org_id = ?1 AND {_ALARM_VISIBLE} "
        "AND (?4 IS NULL OR (?4 = 'active' AND cleared_at IS NULL AND acked_at IS NULL) "
        "OR (?4 = 'acknowledged' AND cleared_at IS NULL AND acked_at IS NOT NULL) "
        "OR (?4 = 'cleared' AND cleared_at IS NOT NULL)) "
        "AND (?5 IS NULL OR device_id = ?5) AND (?6 IS NULL OR raised_at >= ?6) "
        "AND (?7 IS NULL OR raised_at < ?7) AND (raised_at, id) < (?8, ?9) "
        "AND (?11 IS NULL OR rule_id = ?11) ORDER BY raised_at DESC, id DESC LIMIT ?10",
        (*reach(owner), state, device_id, *window, after_ts, after_id, limit, rule_id),
    )
    return [_alarm(row) for row in rows]


# Actors that are the gateway itself, not a person: their actions are not pushed upstream.
_SYSTEM_ACTORS: Final = ("rule", "rule deleted")


def unsynced_actions(conn: apsw.Connection, limit: int) -> list[tuple[AlarmNote, Alarm]]:
    """People's acknowledgements, clears and comments not yet carried upstream, oldest first."""
    rows = conn.execute(
        "SELECT n.id, n.alarm_id, n.action, n.actor, n.text, n.ts FROM alarm_notes AS n "
        "WHERE n.synced_at IS NULL AND n.actor NOT IN (?, ?) ORDER BY n.ts, n.id LIMIT ?",
        (*_SYSTEM_ACTORS, limit),
    )
    found = []
    for row in rows:
        note = AlarmNote(*row)
        alarm_row = conn.execute(
            f"SELECT {_ALARM_COLUMNS} FROM alarms WHERE id = ?", (note.alarm_id,)
        ).fetchone()
        found.append((note, _alarm(alarm_row)))
    return found


def mark_action_synced(conn: apsw.Connection, note_id: str) -> None:
    conn.execute("UPDATE alarm_notes SET synced_at = ? WHERE id = ?", (now_ms(), note_id))


def upsert_rule(conn: apsw.Connection, org_id: str, row: dict[str, Any]) -> bool:
    """Create or update a rule by id as pulled from the upstream; False if its device is not
    here. A row with `deleted_at` set deletes the rule here too."""
    device_id = row.get("device_id")
    if (
        device_id is not None
        and not conn.execute(
            "SELECT 1 FROM devices WHERE id = ? AND org_id = ?", (device_id, org_id)
        ).fetchone()
    ):
        return False
    ts = now_ms()
    conn.execute(
        f"INSERT INTO alert_rules ({_RULE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, "
        "?10, ?10, ?11, 1) ON CONFLICT (id) DO UPDATE SET name = excluded.name, "
        "params = excluded.params, severity = excluded.severity, enabled = excluded.enabled, "
        "updated_at = excluded.updated_at, deleted_at = excluded.deleted_at, "
        "version = alert_rules.version + 1 WHERE alert_rules.org_id = excluded.org_id",
        (row["id"], org_id, row["name"], row["kind"], device_id, row.get("metric"),
         msgspec.json.encode(row.get("params") or {}).decode(), row.get("severity", "warning"),
         int(row.get("enabled", True)), ts, ts if row.get("deleted_at") else None),
    )  # fmt: skip
    return True
