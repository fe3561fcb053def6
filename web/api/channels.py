"""`/notification-channels` (seed 001's alerting group): where alarms and other events go, by
webhook (signed, as /webhooks), a chat tool's incoming webhook, or e-mail.

A channel takes the event types it lists (by default `alarm.raised` and
`alarm.cleared`) at or above its `min_severity`. Deliveries, retries and the
delivery log are the webhooks' (`sync.webhooks`); a webhook channel's secret is
answered once, when it is made or rotated.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, QueryParameter

from edge.runtime import Runtime
from edge.store import DEFAULT_CHANNEL_EVENTS, Channel
from web.api import params, resources
from web.api.dialect import Dialect
from web.api.webhooks import Description, Url, delivery_out, parse, unbounded_org

SCOPE = "webhooks.write"
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class _NewChannel(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: Name
    type: str
    url: Url | None = None
    to: list[str] = []
    events: list[str] = msgspec.field(default_factory=lambda: list(DEFAULT_CHANNEL_EVENTS))
    min_severity: str | None = None
    description: Description | None = None
    enabled: bool = True


class _Change(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: Name | msgspec.UnsetType = msgspec.UNSET
    url: Url | msgspec.UnsetType = msgspec.UNSET
    to: list[str] | msgspec.UnsetType = msgspec.UNSET
    events: list[str] | msgspec.UnsetType = msgspec.UNSET
    min_severity: str | msgspec.UnsetType | None = msgspec.UNSET
    description: Description | msgspec.UnsetType | None = msgspec.UNSET
    enabled: bool | msgspec.UnsetType = msgspec.UNSET
    rotate_secret: bool = False


def _out(c: Channel, secret: str | None = None) -> dict[str, Any]:
    out = {
        "id": c.id,
        "name": c.name,
        "type": c.type,
        "url": c.url,
        "to": c.to,
        "events": c.events,
        "min_severity": c.min_severity,
        "description": c.description,
        "enabled": c.enabled,
        "etag": resources.etag(c),
        "created_at": resources.iso(c.created_at),
        "updated_at": resources.iso(c.updated_at),
        "deleted_at": resources.iso(c.deleted_at),
    }
    if secret is not None:
        out["secret"] = secret
    return out


def _answer(
    request: Request, dialect: Dialect, c: Channel, secret: str | None = None, status: int = 200
) -> Response:
    return Response(dialect.one(request, _out(c, secret)), status_code=status,
                    headers={"ETag": resources.etag(c)})  # fmt: skip


class NotificationChannelsController(Controller):
    """The caller's organization's notification channels and what was sent to them."""

    path = "/notification-channels"
    tags = ["alarms"]

    @get("/", opt={"scope": SCOPE})
    async def list_channels(
        self,
        request: Request,
        runtime: NamedDependency[Runtime],
        dialect: NamedDependency[Dialect],
        updated_since: FromQuery[datetime | None] = None,
        updated_since_camel: Annotated[datetime | None, QueryParameter(name="updatedSince")] = None,
        limit: params.PageSize = None,
        page_size: params.CamelSize = None,
        cursor: FromQuery[str | None] = None,
    ) -> dict[str, Any]:
        """In (updated_at, id) order; with updated_since, deleted ones too. No secrets."""
        size = params.page_size(dialect, limit, page_size)
        since = resources.epoch_ms(updated_since or updated_since_camel, "updated_since")
        page = await asyncio.to_thread(
            runtime.store.channel_page, unbounded_org(request), since, cursor, size
        )
        return dialect.page(request, [_out(c) for c in page.items], page.next_cursor, size)

    @post("/", opt={"scope": SCOPE})
    async def create_channel(
        self, request: Request, runtime: NamedDependency[Runtime], dialect: NamedDependency[Dialect]
    ) -> Response[dict[str, Any]]:
        """A new channel: name, type (webhook, slack, email), url or to, events, min_severity."""
        org = unbounded_org(request)
        new = parse(params.json_body(dialect, await request.body()), _NewChannel)
        channel = Channel("", org, new.name, new.type, new.url, new.to, new.events,
                          new.min_severity, new.description, new.enabled)  # fmt: skip
        made, secret = await asyncio.to_thread(runtime.store.create_channel, org, channel)
        return _answer(request, dialect, made, secret, 201)

    @get("/{channel_id:str}", opt={"scope": SCOPE})
    async def get_channel(
        self,
        request: Request,
        runtime: NamedDependency[Runtime],
        dialect: NamedDependency[Dialect],
        channel_id: FromPath[str],
    ) -> Response[dict[str, Any]]:
        """One channel, with its ETag (never its secret)."""
        found = await asyncio.to_thread(runtime.store.channel, unbounded_org(request), channel_id)
        return _answer(request, dialect, found)

    @patch("/{channel_id:str}", opt={"scope": SCOPE})
    async def update_channel(
        self,
        request: Request,
        runtime: NamedDependency[Runtime],
        dialect: NamedDependency[Dialect],
        channel_id: FromPath[str],
    ) -> Response[dict[str, Any]]:
        """Change any field but the type; `rotate_secret` answers a webhook channel's new secret
        once. A stale If-Match gets 409."""
        org, expected = unbounded_org(request), params.if_match(request)
        change = parse(params.json_body(dialect, await request.body()), _Change)
        fields = {k: v for k, v in msgspec.structs.asdict(change).items()
                  if v is not msgspec.UNSET and k != "rotate_secret"}  # fmt: skip
        updated, secret = await asyncio.to_thread(
            lambda: runtime.store.update_channel(
                org, channel_id, expected, change.rotate_secret, **fields
            )
        )
        return _answer(request, dialect, updated, secret)

    @delete("/{channel_id:str}", opt={"scope": SCOPE}, status_code=204)
    async def delete_channel(
        self, request: Request, runtime: NamedDependency[Runtime], channel_id: FromPath[str]
    ) -> None:
        """Remove a channel (soft: `updated_since` listings show it deleted); its pending
        deliveries fail."""
        await asyncio.to_thread(runtime.store.delete_channel, unbounded_org(request), channel_id)

    @post("/{channel_id:str}/test", opt={"scope": SCOPE}, status_code=202)
    async def test_channel(
        self,
        request: Request,
        runtime: NamedDependency[Runtime],
        dialect: NamedDependency[Dialect],
        channel_id: FromPath[str],
    ) -> dict[str, Any]:
        """Queue a `webhook.test` delivery to this channel only; answers the delivery (202)."""
        queued = await asyncio.to_thread(
            runtime.store.queue_channel_test, unbounded_org(request), channel_id
        )
        return dialect.one(request, delivery_out(queued))

    @get("/{channel_id:str}/deliveries", opt={"scope": SCOPE})
    async def list_channel_deliveries(
        self,
        request: Request,
        runtime: NamedDependency[Runtime],
        dialect: NamedDependency[Dialect],
        channel_id: FromPath[str],
        limit: params.PageSize = None,
        page_size: params.CamelSize = None,
        cursor: FromQuery[str | None] = None,
    ) -> dict[str, Any]:
        """The delivery log, newest first: status, attempts, last answer, next attempt."""
        size = params.page_size(dialect, limit, page_size)
        page = await asyncio.to_thread(
            runtime.store.channel_deliveries, unbounded_org(request), channel_id, cursor, size
        )
        return dialect.page(request, [delivery_out(d) for d in page.items], page.next_cursor, size)
