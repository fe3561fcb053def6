"""`/devices`: list (filters, keyset pages, updated_since), count, get, create, patch, delete."""

from __future__ import annotations

import asyncio
import re
from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, QueryParameter

from edge import movements
from edge.runtime import CommandRefused, Runtime
from edge.store import DeviceFilter
from web.api import params, resources
from web.api.dialect import Dialect
from web.api.errors import ApiError

MUTABLE = ("name", "site_id", "group_id", "tags", "enabled", "movement")
# Health fields the answer names itself; the rest of a driver's health goes under `details`.
_HEALTH_FIELDS = frozenset(
    {"last_contact_ms", "poll_success_rate", "last_error", "rejected_points"}
)
# A caller may choose a new device's id (a downstream gateway registering its own devices).
DEVICE_ID = re.compile(r"^dev_[A-Za-z0-9_-]{1,64}$")


def _movement(raw: Any) -> dict[str, Any] | None:
    """Movement settings with their defaults filled in (None removes them); 422 if bad."""
    if raw is None:
        return None
    try:
        return msgspec.to_builtins(movements.parse_settings(raw))
    except ValueError as error:
        raise ApiError(422, str(error), {"field": "movement"}) from None


class DevicesController(Controller):
    """Devices of the caller's organization."""

    path = "/devices"
    tags = ["devices"]

    @get("/", opt={"scope": "devices.read"})
    async def list_devices(
        self,
        request: Request,
        runtime: NamedDependency[Runtime],
        dialect: NamedDependency[Dialect],
        limit: params.PageSize = None,
        page_size: params.CamelSize = None,
        cursor: FromQuery[str | None] = None,
        site: FromQuery[str | None] = None,
        site_id: Annotated[str | None, QueryParameter(name="siteId")] = None,
        type: FromQuery[str | None] = None,
        status: FromQuery[str | None] = None,
        tag: FromQuery[str | None] = None,
        group_id: Annotated[str | None, QueryParameter(name="groupId")] = None,
        updated_since: FromQuery[datetime | None] = None,
        updated_since_camel: Annotated[datetime | None, QueryParameter(name="updatedSince")] = None,
    ) -> dict[str, Any]:
        """List devices: filters AND-combined, oldest change first, a keyset page at a time."""
        caller, size = params.caller(request), params.page_size(dialect, limit, page_size)
        since = updated_since or updated_since_camel
        where = DeviceFilter(site_id=site or site_id, type=type, tag=tag, group_id=group_id,
                             updated_since=resources.epoch_ms(since, "updated_since"))  # fmt: skip
        items: list[dict[str, Any]] = []
        while True:
            page = await asyncio.to_thread(
                runtime.store.device_page, caller.boundary, where, cursor, size
            )
            shown = [resources.device(runtime, d, dialect.camel_case) for d in page.items]
            items += [d for d in shown if status is None or d["status"] == status]
            cursor = page.next_cursor
            if cursor is None or len(items) >= size or status is None:
                return dialect.page(request, items, cursor, size)

    @get("/count", opt={"scope": "devices.read"})
    async def count_devices(
        self, request: Request, runtime: NamedDependency[Runtime], dialect: NamedDependency[Dialect]
    ) -> dict[str, Any]:
        """How many devices the organization has."""
        count = await asyncio.to_thread(
            runtime.store.count_devices, params.caller(request).boundary
        )
        return dialect.one(request, {"count": count, "approximate": True})

    @get("/{device_id:str}", opt={"scope": "devices.read"})
    async def get_device(
        self,
        request: Request,
        runtime: NamedDependency[Runtime],
        dialect: NamedDependency[Dialect],
        device_id: FromPath[str],
    ) -> Response[dict[str, Any]]:
        """One device, with its ETag."""
        d = await asyncio.to_thread(
            runtime.store.device, params.caller(request).boundary, device_id
        )
        body = dialect.one(request, resources.device(runtime, d, dialect.camel_case))
        return Response(body, headers={"ETag": resources.etag(d)})

    @post("/", opt={"scope": "devices.write"})
    async def create_device(
        self, request: Request, runtime: NamedDependency[Runtime], dialect: NamedDependency[Dialect]
    ) -> Response[dict[str, Any]]:
        """Register a device and how the gateway reaches it."""
        body = params.json_body(dialect, await request.body())
        kind = body.get("type")
        if not isinstance(body.get("name"), str) or not body["name"].strip():
            raise ApiError(422, "name is required.", {"field": "name"})
        if kind not in runtime.device_types:
            raise ApiError(422, f"type must be one of {', '.join(sorted(runtime.device_types))}.",
                           {"field": "type"})  # fmt: skip
        given = body.get("id")
        if given is not None and (not isinstance(given, str) or not DEVICE_ID.match(given)):
            raise ApiError(422, "id must look like dev_ followed by letters and digits.",
                           {"field": "id"})  # fmt: skip
        # Validated here, stored with the device in its one transaction.
        body["movement"] = _movement(body.get("movement"))
        add = runtime.device_types[kind]
        try:
            d = await asyncio.to_thread(add, runtime.store, params.caller(request).boundary, body)
        except (ValueError, KeyError, TypeError) as error:
            raise ApiError(422, str(error).strip("'\""), {"field": "body"}) from None
        out = dialect.one(request, resources.device(runtime, d, dialect.camel_case))
        return Response(out, status_code=201, headers={"ETag": resources.etag(d)})

    @patch("/{device_id:str}", opt={"scope": "devices.write"})
    async def update_device(
        self,
        request: Request,
        runtime: NamedDependency[Runtime],
        dialect: NamedDependency[Dialect],
        device_id: FromPath[str],
    ) -> Response[dict[str, Any]]:
        """Change name, site, group, tags, enabled or movement; a stale If-Match gets 409."""
        body = params.json_body(dialect, await request.body())
        unknown = sorted(set(body) - set(MUTABLE))
        if unknown:
            raise ApiError(422, f"{unknown[0]} cannot be changed.", {"field": unknown[0]})
        if "movement" in body:
            body["movement"] = _movement(body["movement"])
        expected = params.if_match(request)
        d = await asyncio.to_thread(
            lambda: runtime.store.update_device(
                params.caller(request).boundary, device_id, expected_version=expected, **body
            )
        )
        # A device moved out of a key's groups must stop taking that key's readings now.
        request.app.state.point_cache.forget_device(device_id)
        out = dialect.one(request, resources.device(runtime, d, dialect.camel_case))
        return Response(out, headers={"ETag": resources.etag(d)})

    @delete("/{device_id:str}", opt={"scope": "devices.write"}, status_code=204)
    async def delete_device(
        self, request: Request, runtime: NamedDependency[Runtime], device_id: FromPath[str]
    ) -> None:
        """Decommission a device; its data stays, per retention."""
        await asyncio.to_thread(
            runtime.store.delete_device, params.caller(request).boundary, device_id
        )
        request.app.state.point_cache.forget_device(device_id)

    @get("/{device_id:str}/health", opt={"scope": "devices.read"})
    async def device_health(
        self,
        request: Request,
        runtime: NamedDependency[Runtime],
        dialect: NamedDependency[Dialect],
        device_id: FromPath[str],
    ) -> dict[str, Any]:
        """Status, last contact, poll success rate, last error, the newest readings' quality and
        the driver's own details."""
        caller = params.caller(request)
        d = await asyncio.to_thread(runtime.store.device, caller.boundary, device_id)
        driver = runtime.driver_of(d)
        found = (driver.health(d.id) if driver is not None else None) or {}
        points = await asyncio.to_thread(runtime.store.points, caller.boundary, d.id)
        latest = await asyncio.to_thread(
            runtime.store.latest, caller.org_id, [p.id for p in points]
        )
        qualities: dict[str, int] = {}
        for reading in latest.values():
            name = reading.quality.name.lower()
            qualities[name] = qualities.get(name, 0) + 1
        newest = max((r.ts_ms for r in latest.values()), default=None)
        return dialect.one(
            request,
            {
                "device_id": d.id,
                "status": runtime.device_status(d),
                "last_contact": resources.iso(found.get("last_contact_ms") or newest),
                "poll_success_rate": found.get("poll_success_rate"),
                "last_error": found.get("last_error"),
                "rejected_points": found.get("rejected_points", []),
                "quality": qualities,
                # What else the driver knows (a BLE sensor's RSSI and advert interval ...).
                "details": {k: v for k, v in found.items() if k not in _HEALTH_FIELDS},
            },
        )

    @post("/{device_id:str}/commands", opt={"scope": "devices.write"}, status_code=200)
    async def device_command(
        self,
        request: Request,
        runtime: NamedDependency[Runtime],
        dialect: NamedDependency[Dialect],
        device_id: FromPath[str],
    ) -> dict[str, Any]:
        """Run a command through the device's driver: `write` a point, `refresh_config` ..."""
        caller = params.caller(request)
        body = params.json_body(dialect, await request.body())
        d = await asyncio.to_thread(runtime.store.device, caller.boundary, device_id)
        driver = runtime.driver_of(d)
        if driver is None:
            raise ApiError(422, f"Devices of type {d.type} take no commands.", {"field": "command"})
        try:
            result = await driver.command(d.id, body, actor=caller.key.id)
        except CommandRefused as error:
            raise ApiError(422, str(error), {"field": "command"}) from None
        return dialect.one(request, {"command": body.get("command"), "status": "done",
                                     "result": result})  # fmt: skip
