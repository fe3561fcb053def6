"""SQL over webhooks: subscriptions, their signing secrets, and the durable delivery log.

Deliveries are made from the `events` table. `fan_out` follows it by rowid
from a watermark kept in `meta` and, in the transaction that advances the
watermark, adds one pending delivery per event for each live, enabled webhook
of the event's organization that subscribes to its type. So an event is
turned into deliveries exactly once, whatever crashes in between. Rowids are
assigned by the one writer in commit order, so a reader never finds a gap that
fills in later.

The secret is kept as it is (not hashed): every delivery is signed with it.
The API shows it only when it is made.
"""

from __future__ import annotations

import secrets
from collections import defaultdict
from typing import Any, Final
from urllib.parse import urlsplit

import apsw
import msgspec

from edge import ids
from edge.models import Event, now_ms
from edge.store._catalog import Conflict, NotFound, Refused, check_change
from edge.store._events import event_row, insert_events
from edge.store._readings import meta_int, set_meta

# Every event type the gateway records, in one place: webhooks may subscribe to these or "*".
EVENT_TYPES: Final = frozenset(
    {
        "alarm.raised",
        "alarm.cleared",
        "report.ready",
        "export.ready",
        "device.offline",
        "device.online",
        "device.config_error",
        "device.command",
        "device.command_failed",
        "modbus.point_rejected",
        "ble.decrypt_failed",
        "sync.uplink_lost",
        "sync.uplink_restored",
        "sync.quarantine_discarded",
        "store.disk_full",
        "store.disk_recovered",
        "webhook.test",
    }
)
ANY: Final = "*"
# A test goes only to the webhook it tests, never to every subscriber of the type.
TEST_EVENT: Final = "webhook.test"
SECRET_PREFIX: Final = "whsec_"
# 32 random bytes: 43 URL-safe characters after the prefix.
SECRET_BYTES: Final = 32
WATERMARK: Final = "webhooks_event_rowid"
MUTABLE: Final = frozenset({"url", "events", "description", "enabled"})
PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
# What a row of the webhooks table is: a /webhooks subscription or a notification channel.
WEBHOOK, CHANNEL = "webhook", "channel"
# Least to most severe; a channel's min_severity takes its level and those above.
SEVERITY_RANK: Final = {"info": 0, "warning": 1, "error": 2, "critical": 3}

_COLUMNS: Final = (
    "id, org_id, url, events, description, enabled, created_at, updated_at, deleted_at, version"
)
_DELIVERY_COLUMNS: Final = (
    "seq, id, webhook_id, event_id, type, status, attempts, last_status_code, last_error, "
    "next_attempt_at, created_at, updated_at, delivered_at"
)


class Webhook(msgspec.Struct, frozen=True):
    """A receiver URL and the event types it subscribes to (its secret is not part of it)."""

    id: str
    org_id: str
    url: str
    events: list[str]
    description: str | None = None
    enabled: bool = True
    created_at: int = 0
    updated_at: int = 0
    deleted_at: int | None = None
    version: int = 1


class WebhookDelivery(msgspec.Struct, frozen=True):
    """One event sent (or to be sent) to one webhook: its status and its last attempt."""

    seq: int
    id: str
    webhook_id: str
    event_id: str
    type: str
    status: str
    attempts: int
    last_status_code: int | None
    last_error: str | None
    next_attempt_at: int | None
    created_at: int
    updated_at: int
    delivered_at: int | None


class DueDelivery(msgspec.Struct, frozen=True):
    """What the dispatcher needs to send a delivery: where and how, the secret, the event."""

    id: str
    webhook_id: str
    url: str
    secret: str
    attempts: int
    created_at: int
    event: Event
    transport: str = "webhook"  # webhook, slack or email
    name: str | None = None
    config: dict[str, Any] = {}


def check_url(url: Any) -> str:
    """An http(s) URL with a host, or Refused."""
    if not isinstance(url, str) or any(c.isspace() for c in url):
        raise Refused("url must be an http or https URL without spaces")
    try:
        parts = urlsplit(url)
        # Reading the port raises ValueError when it is not a number in range.
        host, _ = parts.hostname, parts.port
    except ValueError:
        raise Refused(f"url {url!r} is not a valid URL") from None
    if parts.scheme not in ("http", "https") or not host:
        raise Refused(f"url must be an http or https URL with a host, not {url!r}")
    return url


def check_events(events: Any) -> list[str]:
    """A non-empty list of known event types or "*", without repeats, or Refused."""
    if not isinstance(events, list) or not events:
        raise Refused('events must be a non-empty list of event types or "*"')
    unknown = [e for e in events if e != ANY and e not in EVENT_TYPES]
    if unknown:
        raise Refused(f"unknown event type {unknown[0]!r}; known: {', '.join(sorted(EVENT_TYPES))}")
    return list(dict.fromkeys(events))


def new_secret() -> str:
    """A new signing secret."""
    return SECRET_PREFIX + secrets.token_urlsafe(SECRET_BYTES)


def _webhook(row: tuple) -> Webhook:
    (id_, org, url, events, description, enabled, created, updated, deleted, version) = row
    return Webhook(id_, org, url, msgspec.json.decode(events), description, bool(enabled),
                   created, updated, deleted, version)  # fmt: skip


def _delivery(row: tuple) -> WebhookDelivery:
    return WebhookDelivery(*row)


def create(
    conn: apsw.Connection, org_id: str, url: str, events: list[str], description: str | None
) -> tuple[Webhook, str]:
    """A new webhook of the org and its signing secret."""
    ts = now_ms()
    made = Webhook(ids.new_id("wh"), org_id, check_url(url), check_events(events), description,
                   True, ts, ts)  # fmt: skip
    secret = new_secret()
    conn.execute(
        f"INSERT INTO webhooks ({_COLUMNS}, secret) VALUES (?, ?, ?, ?, ?, 1, ?, ?, NULL, 1, ?)",
        (made.id, org_id, made.url, msgspec.json.encode(made.events).decode(), description, ts,
         ts, secret),
    )  # fmt: skip
    return made, secret


def get(conn: apsw.Connection, org_id: str, webhook_id: str) -> Webhook:
    """A live webhook of the org, or NotFound."""
    row = live_row(conn, _COLUMNS, WEBHOOK, org_id, webhook_id)
    if row is None:
        raise NotFound(f"no webhook {webhook_id}")
    return _webhook(row)


def page(
    conn: apsw.Connection,
    org_id: str,
    updated_since: int | None,
    after: tuple[int, str] | None,
    limit: int,
) -> list[Webhook]:
    """Webhooks in (updated_at, id) order; with updated_since, deleted ones too."""
    return [
        _webhook(row)
        for row in updated_rows(conn, _COLUMNS, WEBHOOK, org_id, updated_since, after, limit)
    ]


def live_row(
    conn: apsw.Connection, columns: str, kind: str, org_id: str, row_id: str
) -> tuple | None:
    """`columns` of one live row of this kind (webhook or channel) of the org."""
    return conn.execute(
        f"SELECT {columns} FROM webhooks WHERE org_id = ? AND id = ? AND deleted_at IS NULL "
        "AND kind = ?",
        (org_id, row_id, kind),
    ).fetchone()


def updated_rows(
    conn: apsw.Connection,
    columns: str,
    kind: str,
    org_id: str,
    updated_since: int | None,
    after: tuple[int, str] | None,
    limit: int,
) -> list[tuple]:
    """`columns` of rows of this kind in (updated_at, id) order; with updated_since, deleted
    ones too."""
    after_ts, after_id = after if after is not None else (-1, "")
    return conn.execute(
        f"SELECT {columns} FROM webhooks WHERE org_id = ?1 AND kind = ?6 "
        "AND ((?2 IS NULL AND deleted_at IS NULL) OR updated_at > ?2) "
        "AND (updated_at, id) > (?3, ?4) ORDER BY updated_at, id LIMIT ?5",
        (org_id, updated_since, after_ts, after_id, limit, kind),
    ).fetchall()


def update(
    conn: apsw.Connection,
    org_id: str,
    webhook_id: str,
    changes: dict[str, Any],
    expected_version: int | None,
    rotate_secret: bool,
) -> tuple[Webhook, str | None]:
    """Change a webhook (Conflict if `expected_version` is stale); a rotated secret is returned."""
    current = get(conn, org_id, webhook_id)
    check_change("webhook", current, changes, MUTABLE, expected_version)
    if "url" in changes:
        check_url(changes["url"])
    if "events" in changes:
        changes = {**changes, "events": check_events(changes["events"])}
    try:
        updated = msgspec.convert(
            {**msgspec.to_builtins(current), **changes,
             "updated_at": max(now_ms(), current.updated_at + 1),
             "version": current.version + 1},
            Webhook,
        )  # fmt: skip
    except msgspec.ValidationError as error:
        raise Refused(str(error).replace("`", "")) from None
    secret = new_secret() if rotate_secret else None
    conn.execute(
        "UPDATE webhooks SET url = ?, events = ?, description = ?, enabled = ?, updated_at = ?, "
        "version = ?, secret = coalesce(?, secret) WHERE id = ?",
        (updated.url, msgspec.json.encode(updated.events).decode(), updated.description,
         int(updated.enabled), updated.updated_at, updated.version, secret, webhook_id),
    )  # fmt: skip
    return updated, secret


def delete(conn: apsw.Connection, org_id: str, webhook_id: str) -> Webhook:
    """Soft-delete a webhook; its pending deliveries fail, since nobody will send them."""
    return retire(conn, get(conn, org_id, webhook_id), "webhook")


def retire(conn: apsw.Connection, current: Any, kind: str) -> Any:
    """Soft-delete a webhook or channel row (`current`, as read); its pending deliveries fail."""
    ts = max(now_ms(), current.updated_at + 1)
    conn.execute(
        "UPDATE webhooks SET deleted_at = ?, updated_at = ?, version = version + 1 WHERE id = ?",
        (ts, ts, current.id),
    )
    conn.execute(
        "UPDATE webhook_deliveries SET status = ?, next_attempt_at = NULL, updated_at = ?, "
        "last_error = ? WHERE webhook_id = ? AND status = ?",
        (FAILED, ts, f"the {kind} was deleted", current.id, PENDING),
    )
    return msgspec.structs.replace(
        current, deleted_at=ts, updated_at=ts, version=current.version + 1
    )


def _insert_deliveries(conn: apsw.Connection, rows: list[tuple[Any, ...]]) -> None:
    """Pending deliveries from (id, org_id, webhook_id, event_id, type, ts) rows."""
    conn.executemany(
        "INSERT INTO webhook_deliveries (id, org_id, webhook_id, event_id, type, status, "
        "attempts, next_attempt_at, created_at, updated_at) "
        "VALUES (?1, ?2, ?3, ?4, ?5, 'pending', 0, ?6, ?6, ?6)",
        rows,
    )


def delivery(conn: apsw.Connection, org_id: str, delivery_id: str) -> WebhookDelivery:
    """One delivery of the org, or NotFound."""
    row = conn.execute(
        f"SELECT {_DELIVERY_COLUMNS} FROM webhook_deliveries WHERE org_id = ? AND id = ?",
        (org_id, delivery_id),
    ).fetchone()
    if row is None:
        raise NotFound(f"no webhook delivery {delivery_id}")
    return _delivery(row)


def queue_test(conn: apsw.Connection, org_id: str, webhook_id: str) -> WebhookDelivery:
    """Record a `webhook.test` event and queue its delivery to this webhook only."""
    return queue_test_of(conn, get(conn, org_id, webhook_id), "webhook")


def queue_test_of(conn: apsw.Connection, hook: Any, kind: str) -> WebhookDelivery:
    """A `webhook.test` event queued to one webhook or channel row (`hook`, as read) only."""
    if not hook.enabled:
        raise Conflict(f"{kind} {hook.id} is disabled; enable it to send a test")
    ts = now_ms()
    event_id, delivery_id = ids.new_id("evt"), ids.new_id("whd")
    insert_events(conn, [event_row(event_id, hook.org_id, TEST_EVENT, "info",
                                   f"Test delivery to {hook.url}", ts, None,
                                   {"webhook_id": hook.id})])  # fmt: skip
    _insert_deliveries(conn, [(delivery_id, hook.org_id, hook.id, event_id, TEST_EVENT, ts)])
    return delivery(conn, hook.org_id, delivery_id)


def deliveries(
    conn: apsw.Connection, org_id: str, webhook_id: str, after: tuple[int] | None, limit: int
) -> list[WebhookDelivery]:
    """A live webhook's deliveries, newest first."""
    get(conn, org_id, webhook_id)
    return deliveries_of(conn, org_id, webhook_id, after, limit)


def deliveries_of(
    conn: apsw.Connection, org_id: str, hook_id: str, after: tuple[int] | None, limit: int
) -> list[WebhookDelivery]:
    """The deliveries made for one webhook or channel row, newest first."""
    rows = conn.execute(
        f"SELECT {_DELIVERY_COLUMNS} FROM webhook_deliveries WHERE webhook_id = ?1 "
        "AND org_id = ?2 AND (?3 IS NULL OR seq < ?3) ORDER BY seq DESC LIMIT ?4",
        (hook_id, org_id, after[0] if after else None, limit),
    )
    return [_delivery(row) for row in rows]


def events_waiting(conn: apsw.Connection) -> bool:
    """True if events were recorded past the watermark (a read, so idle polls write nothing)."""
    (top,) = conn.execute("SELECT coalesce(max(rowid), 0) FROM events").fetchone()
    return top > meta_int(conn, WATERMARK)


def fan_out(conn: apsw.Connection, limit: int) -> int:
    """Turn up to `limit` events past the watermark into deliveries; returns the events read.

    A webhook receives the events recorded since it was made, of the types it subscribes to;
    a channel only those at or above its minimum severity.
    """
    rows = conn.execute(
        "SELECT rowid, id, org_id, type, ts, severity FROM events WHERE rowid > ? "
        "ORDER BY rowid LIMIT ?",
        (meta_int(conn, WATERMARK), limit),
    ).fetchall()
    if not rows:
        return 0
    hooks: dict[str, list[tuple[str, set[str], int, int]]] = defaultdict(list)
    for hook_id, org, events, created, least in conn.execute(
        "SELECT id, org_id, events, created_at, min_severity FROM webhooks "
        "WHERE deleted_at IS NULL AND enabled = 1"
    ):
        rank = SEVERITY_RANK.get(least, 0)
        hooks[org].append((hook_id, set(msgspec.json.decode(events)), created, rank))
    ts = now_ms()
    made = [
        (ids.new_id("whd"), org, hook_id, event_id, type_, ts)
        for _, event_id, org, type_, event_ts, severity in rows
        if type_ != TEST_EVENT
        for hook_id, subscribed, created, least in hooks.get(org, ())
        if event_ts >= created
        and (type_ in subscribed or ANY in subscribed)
        and SEVERITY_RANK.get(severity, 0) >= least
    ]
    _insert_deliveries(conn, made)
    set_meta(conn, WATERMARK, rows[-1][0])
    return len(rows)


def due(conn: apsw.Connection, now: int, url: str | None, limit: int) -> list[DueDelivery]:
    """The oldest pending delivery to each URL (or to `url`), if its time has come.

    Only the head of a URL's queue is ever due, so one URL gets its deliveries one at a time,
    in the order they were made; a disabled webhook's deliveries wait until it is enabled.
    """
    rows = conn.execute(
        "WITH heads AS (SELECT min(d.seq) AS seq FROM webhook_deliveries d "
        "JOIN webhooks w ON w.id = d.webhook_id WHERE d.status = ?1 AND w.deleted_at IS NULL "
        "AND w.enabled = 1 AND (?3 IS NULL OR w.url = ?3) GROUP BY w.url) "
        "SELECT d.id, d.webhook_id, w.url, w.secret, d.attempts, d.created_at, w.transport, "
        "w.name, w.config, e.id, e.org_id, e.type, e.severity, e.message, e.ts, e.device_id, "
        "e.data "
        "FROM heads JOIN webhook_deliveries d ON d.seq = heads.seq "
        "JOIN webhooks w ON w.id = d.webhook_id JOIN events e ON e.id = d.event_id "
        "WHERE d.next_attempt_at <= ?2 ORDER BY d.next_attempt_at, d.seq LIMIT ?4",
        (PENDING, now, url, limit),
    )
    return [
        DueDelivery(
            id_,
            hook,
            to,
            secret,
            attempts,
            created,
            _event(event),
            transport,
            name,
            msgspec.json.decode(config),
        )
        for id_, hook, to, secret, attempts, created, transport, name, config, *event in rows
    ]


def _event(row: list[Any]) -> Event:
    id_, org, type_, severity, message, ts, device_id, data = row
    return Event(id=id_, org_id=org, type=type_, severity=severity, message=message, ts_ms=ts,
                 device_id=device_id, data=msgspec.json.decode(data))  # fmt: skip


def attempted(
    conn: apsw.Connection,
    delivery_id: str,
    status: str,
    status_code: int | None,
    error: str | None,
    next_attempt_at: int | None,
) -> None:
    """Record an attempt's outcome; a delivery no longer pending (its webhook deleted) stays."""
    ts = now_ms()
    conn.execute(
        "UPDATE webhook_deliveries SET status = ?, attempts = attempts + 1, "
        "last_status_code = ?, last_error = ?, next_attempt_at = ?, updated_at = ?, "
        "delivered_at = ? WHERE id = ? AND status = ?",
        (status, status_code, error, next_attempt_at, ts, ts if status == DELIVERED else None,
         delivery_id, PENDING),
    )  # fmt: skip


def prune(conn: apsw.Connection, before: int) -> int:
    """Drop finished (delivered or failed) deliveries last changed before `before`."""
    conn.execute(
        "DELETE FROM webhook_deliveries WHERE updated_at < ? AND status != ?", (before, PENDING)
    )
    return conn.changes()
