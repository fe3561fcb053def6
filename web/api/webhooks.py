"""`/webhooks`: subscriptions to the gateway's events, their signing secrets and delivery logs
(seed 002 "Webhook Subscriptions").

The store makes the deliveries and `sync.webhooks` sends them; the payload and
signature scheme are described there and in the README. A secret is answered
once, when it is made (POST, or PATCH with `rotate_secret`), never again.
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
from edge.store import Webhook, WebhookDelivery
from web.api import params, resources
from web.api.dialect import Dialect
from web.api.errors import ApiError

SCOPE = "webhooks.write"
Url = Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]
Description = Annotated[str, msgspec.Meta(max_length=500)]


class _NewWebhook(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    url: Url
    events: list[str]
    description: Description | None = None


class _Change(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    url: Url | msgspec.UnsetType = msgspec.UNSET
    events: list[str] | msgspec.UnsetType = msgspec.UNSET
    description: Description | msgspec.UnsetType | None = msgspec.UNSET
    enabled: bool | msgspec.UnsetType = msgspec.UNSET
    rotate_secret: bool = False


def parse(body: dict[str, Any], kind: type[msgspec.Struct]) -> Any:
    """The body as `kind`, or 422 naming what is wrong."""
    try:
        return msgspec.convert(body, kind)
    except msgspec.ValidationError as error:
        raise ApiError(422, str(error).replace("`", ""), {"field": "body"}) from None


def unbounded_org(request: Request) -> str:
    """The caller's organization; a key limited to groups or customers may not manage webhooks
    or notification channels, since they carry the events of every device of the organization."""
    caller = params.caller(request)
    if caller.boundary.narrowed:
        raise ApiError(403, "A key limited to device groups or customers cannot manage webhooks.")
    return caller.org_id


def _out(w: Webhook, secret: str | None = None) -> dict[str, Any]:
    out = {
        "id": w.id,
        "url": w.url,
        "events": w.events,
        "description": w.description,
        "enabled": w.enabled,
        "etag": resources.etag(w),
        "created_at": resources.iso(w.created_at),
        "updated_at": resources.iso(w.updated_at),
        "deleted_at": resources.iso(w.deleted_at),
    }
    if secret is not None:
        out["secret"] = secret
    return out


def delivery_out(d: WebhookDelivery) -> dict[str, Any]:
    """A delivery as the log shows it."""
    return {
        "id": d.id,
        "webhook_id": d.webhook_id,
        "event_id": d.event_id,
        "event_type": d.type,
        "status": d.status,
        "attempts": d.attempts,
        "last_status_code": d.last_status_code,
        "last_error": d.last_error,
        "next_attempt_at": resources.iso(d.next_attempt_at),
        "created_at": resources.iso(d.created_at),
        "updated_at": resources.iso(d.updated_at),
        "delivered_at": resources.iso(d.delivered_at),
    }


def _answer(
    request: Request, dialect: Dialect, w: Webhook, secret: str | None = None, status: int = 200
) -> Response:
    return Response(dialect.one(request, _out(w, secret)), status_code=status,
                    headers={"ETag": resources.etag(w)})  # fmt: skip


class WebhooksController(Controller):
    """The caller's organization's webhooks and what was sent to them."""

    path = "/webhooks"
    tags = ["webhooks"]

    @get("/", opt={"scope": SCOPE})
    async def list_webhooks(
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
            runtime.store.webhook_page, unbounded_org(request), since, cursor, size
        )
        return dialect.page(request, [_out(w) for w in page.items], page.next_cursor, size)

    @post("/", opt={"scope": SCOPE})
    async def create_webhook(
        self, request: Request, runtime: NamedDependency[Runtime], dialect: NamedDependency[Dialect]
    ) -> Response[dict[str, Any]]:
        """Register a receiver: url, events (types or "*"), description; answers its secret once."""
        org = unbounded_org(request)
        new = parse(params.json_body(dialect, await request.body()), _NewWebhook)
        made, secret = await asyncio.to_thread(
            runtime.store.create_webhook, org, new.url, new.events, new.description
        )
        return _answer(request, dialect, made, secret, 201)

    @get("/{webhook_id:str}", opt={"scope": SCOPE})
    async def get_webhook(
        self,
        request: Request,
        runtime: NamedDependency[Runtime],
        dialect: NamedDependency[Dialect],
        webhook_id: FromPath[str],
    ) -> Response[dict[str, Any]]:
        """One webhook, with its ETag (never its secret)."""
        found = await asyncio.to_thread(runtime.store.webhook, unbounded_org(request), webhook_id)
        return _answer(request, dialect, found)

    @patch("/{webhook_id:str}", opt={"scope": SCOPE})
    async def update_webhook(
        self,
        request: Request,
        runtime: NamedDependency[Runtime],
        dialect: NamedDependency[Dialect],
        webhook_id: FromPath[str],
    ) -> Response[dict[str, Any]]:
        """Change url, events, description or enabled; `rotate_secret` answers a new secret once.

        A stale If-Match gets 409."""
        org, expected = unbounded_org(request), params.if_match(request)
        change = parse(params.json_body(dialect, await request.body()), _Change)
        fields = {k: v for k, v in msgspec.structs.asdict(change).items()
                  if v is not msgspec.UNSET and k != "rotate_secret"}  # fmt: skip
        updated, secret = await asyncio.to_thread(
            lambda: runtime.store.update_webhook(
                org, webhook_id, expected, change.rotate_secret, **fields
            )
        )
        return _answer(request, dialect, updated, secret)

    @delete("/{webhook_id:str}", opt={"scope": SCOPE}, status_code=204)
    async def delete_webhook(
        self, request: Request, runtime: NamedDependency[Runtime], webhook_id: FromPath[str]
    ) -> None:
        """Unregister a webhook (soft: `updated_since` listings show it deleted); its pending
        deliveries fail."""
        await asyncio.to_thread(runtime.store.delete_webhook, unbounded_org(request), webhook_id)

    @post("/{webhook_id:str}/test", opt={"scope": SCOPE}, status_code=202)
    async def test_webhook(
        self,
        request: Request,
        runtime: NamedDependency[Runtime],
        dialect: NamedDependency[Dialect],
        webhook_id: FromPath[str],
    ) -> dict[str, Any]:
        """Queue a signed `webhook.test` delivery to this webhook; answers the delivery (202)."""
        queued = await asyncio.to_thread(
            runtime.store.queue_webhook_test, unbounded_org(request), webhook_id
        )
        return dialect.one(request, delivery_out(queued))

    @get("/{webhook_id:str}/deliveries", opt={"scope": SCOPE})
    async def list_deliveries(
        self,
        request: Request,
        runtime: NamedDependency[Runtime],
        dialect: NamedDependency[Dialect],
        webhook_id: FromPath[str],
        limit: params.PageSize = None,
        page_size: params.CamelSize = None,
        cursor: FromQuery[str | None] = None,
    ) -> dict[str, Any]:
        """The delivery log, newest first: status, attempts, last answer, next attempt."""
        size = params.page_size(dialect, limit, page_size)
        page = await asyncio.to_thread(
            runtime.store.webhook_deliveries, unbounded_org(request), webhook_id, cursor, size
        )
        return dialect.page(request, [delivery_out(d) for d in page.items], page.next_cursor, size)
