"""SQL over notification channels: where alarms and other events are sent, and how.

A channel is a row of the `webhooks` table of kind `channel` with a transport:
`webhook` (a signed JSON POST, as /webhooks), `slack` (an incoming-webhook URL
that takes `{"text": ...}`: Slack, Mattermost, Rocket.Chat, Teams workflows)
or `email` (through the `[notify]` mail relay; its `url` is a `mailto:` of
the recipients, so one recipient list gets its mails in order). Channels
share the webhooks' fan-out, durable delivery log and retries
(`_webhooks`); unlike a webhook, a channel may take only events at or above a
minimum severity.
"""

from __future__ import annotations

import re
from typing import Any, Final

import apsw
import msgspec

from edge import ids
from edge.models import now_ms
from edge.store import _webhooks
from edge.store._catalog import NotFound, Refused, check_change
from edge.store._webhooks import CHANNEL, SEVERITY_RANK, WebhookDelivery

TRANSPORTS: Final = ("webhook", "slack", "email")
# What a channel is for unless told otherwise: alarms, as they are raised and cleared.
DEFAULT_EVENTS: Final = ("alarm.raised", "alarm.cleared")
MAX_RECIPIENTS: Final = 20
# An address a relay will take: no spaces or commas (the recipients are joined with commas).
_ADDRESS: Final = re.compile(r"^[^@\s,;<>]+@[^@\s,;<>]+\.[^@\s,;<>]+$")
MUTABLE: Final = frozenset(
    {"name", "url", "to", "events", "min_severity", "description", "enabled"}
)
_COLUMNS: Final = (
    "id, org_id, name, transport, url, config, events, min_severity, description, enabled, "
    "created_at, updated_at, deleted_at, version"
)


class Channel(msgspec.Struct, frozen=True):
    """A notification channel: its transport, its target and the events it takes."""

    id: str
    org_id: str
    name: str
    type: str
    url: str | None  # webhook and slack
    to: list[str]  # email
    events: list[str]
    min_severity: str | None = None
    description: str | None = None
    enabled: bool = True
    created_at: int = 0
    updated_at: int = 0
    deleted_at: int | None = None
    version: int = 1


def _channel(row: tuple) -> Channel:
    (id_, org, name, transport, url, config, events, least, description, enabled, created,
     updated, deleted, version) = row  # fmt: skip
    to = msgspec.json.decode(config).get("to", [])
    return Channel(id_, org, name, transport, None if transport == "email" else url, to,
                   msgspec.json.decode(events), least, description, bool(enabled), created,
                   updated, deleted, version)  # fmt: skip


def _checked(made: Channel) -> Channel:
    """The channel as it may be stored, or Refused naming what is wrong."""
    if not made.name.strip() or len(made.name) > 200:
        raise Refused("name must be 1 to 200 characters")
    if made.type not in TRANSPORTS:
        raise Refused(f"type must be one of {', '.join(TRANSPORTS)}")
    if made.min_severity is not None and made.min_severity not in SEVERITY_RANK:
        raise Refused(f"min_severity must be one of {', '.join(SEVERITY_RANK)}")
    events = _webhooks.check_events(made.events)
    if made.type == "email":
        if made.url is not None:
            raise Refused("an email channel takes to (addresses), not url")
        if not made.to or len(made.to) > MAX_RECIPIENTS:
            raise Refused(f"to must list 1 to {MAX_RECIPIENTS} e-mail addresses")
        bad = [a for a in made.to if not isinstance(a, str) or not _ADDRESS.match(a)]
        if bad:
            raise Refused(f"to: {bad[0]!r} is not an e-mail address")
        to = list(dict.fromkeys(made.to))
    else:
        if made.to:
            raise Refused(f"a {made.type} channel takes url, not to")
        _webhooks.check_url(made.url)
        to = []
    return msgspec.structs.replace(made, name=made.name.strip(), events=events, to=to)


def _target(c: Channel) -> tuple[str, str]:
    """The (url, config) columns: e-mail recipients are both the queue's key and its config."""
    if c.type == "email":
        return "mailto:" + ",".join(c.to), msgspec.json.encode({"to": c.to}).decode()
    assert c.url is not None
    return c.url, "{}"


def create(conn: apsw.Connection, org_id: str, new: Channel) -> tuple[Channel, str | None]:
    """A new channel of the org; a webhook channel's signing secret is returned, once."""
    ts = now_ms()
    made = _checked(msgspec.structs.replace(new, id=ids.new_id("nch"), org_id=org_id,
                                            created_at=ts, updated_at=ts, version=1))  # fmt: skip
    secret = _webhooks.new_secret()
    url, config = _target(made)
    conn.execute(
        f"INSERT INTO webhooks ({_COLUMNS}, secret, kind) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, 1, ?, ?)",
        (made.id, org_id, made.name, made.type, url, config,
         msgspec.json.encode(made.events).decode(), made.min_severity, made.description,
         int(made.enabled), ts, ts, secret, CHANNEL),
    )  # fmt: skip
    return made, secret if made.type == "webhook" else None


def get(conn: apsw.Connection, org_id: str, channel_id: str) -> Channel:
    """A live channel of the org, or NotFound."""
    row = _webhooks.live_row(conn, _COLUMNS, CHANNEL, org_id, channel_id)
    if row is None:
        raise NotFound(f"no notification channel {channel_id}")
    return _channel(row)


def page(
    conn: apsw.Connection,
    org_id: str,
    updated_since: int | None,
    after: tuple[int, str] | None,
    limit: int,
) -> list[Channel]:
    """Channels in (updated_at, id) order; with updated_since, deleted ones too."""
    rows = _webhooks.updated_rows(conn, _COLUMNS, CHANNEL, org_id, updated_since, after, limit)
    return [_channel(row) for row in rows]


def update(
    conn: apsw.Connection,
    org_id: str,
    channel_id: str,
    changes: dict[str, Any],
    expected_version: int | None,
    rotate_secret: bool,
) -> tuple[Channel, str | None]:
    """Change a channel (Conflict if `expected_version` is stale); a webhook channel's rotated
    secret is returned."""
    current = get(conn, org_id, channel_id)
    check_change("notification channel", current, changes, MUTABLE, expected_version)
    if rotate_secret and current.type != "webhook":
        raise Refused(f"a {current.type} channel has no signing secret to rotate")
    try:
        updated = msgspec.convert(
            {**msgspec.to_builtins(current), **changes,
             "updated_at": max(now_ms(), current.updated_at + 1),
             "version": current.version + 1},
            Channel,
        )  # fmt: skip
    except msgspec.ValidationError as error:
        raise Refused(str(error).replace("`", "")) from None
    updated = _checked(updated)
    secret = _webhooks.new_secret() if rotate_secret else None
    url, config = _target(updated)
    conn.execute(
        "UPDATE webhooks SET name = ?, url = ?, config = ?, events = ?, min_severity = ?, "
        "description = ?, enabled = ?, updated_at = ?, version = ?, "
        "secret = coalesce(?, secret) WHERE id = ?",
        (updated.name, url, config, msgspec.json.encode(updated.events).decode(),
         updated.min_severity, updated.description, int(updated.enabled), updated.updated_at,
         updated.version, secret, channel_id),
    )  # fmt: skip
    return updated, secret


def delete(conn: apsw.Connection, org_id: str, channel_id: str) -> Channel:
    """Soft-delete a channel; its pending deliveries fail."""
    return _webhooks.retire(conn, get(conn, org_id, channel_id), "notification channel")


def deliveries(
    conn: apsw.Connection, org_id: str, channel_id: str, after: tuple[int] | None, limit: int
) -> list[WebhookDelivery]:
    """A live channel's deliveries, newest first."""
    get(conn, org_id, channel_id)
    return _webhooks.deliveries_of(conn, org_id, channel_id, after, limit)


def queue_test(conn: apsw.Connection, org_id: str, channel_id: str) -> WebhookDelivery:
    """Queue a `webhook.test` delivery to this channel only (Conflict if it is disabled)."""
    channel = get(conn, org_id, channel_id)
    return _webhooks.queue_test_of(conn, msgspec.structs.replace(channel, url=_target(channel)[0]),
                                   "notification channel")  # fmt: skip
