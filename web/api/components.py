"""`/components`: a device's replaceable parts and the sensors that measure them (seed 001)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, QueryParameter

from edge.models import Component
from edge.runtime import Runtime
from edge.store import Refused
from web.api import params, resources
from web.api.dialect import Dialect
from web.api.errors import ApiError


class _NewComponent(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    device_id: str
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    kind: str | None = None
    serial_number: str | None = None
    sensor_ids: list[str] = []


def _out(c: Component) -> dict[str, Any]:
    return {
        "id": c.id,
        "device_id": c.device_id,
        "name": c.name,
        "kind": c.kind,
        "serial_number": c.serial_number,
        "sensor_ids": c.sensor_ids,
        "etag": resources.etag(c),
        "created_at": resources.iso(c.created_at),
        "updated_at": resources.iso(c.updated_at),
        "deleted_at": resources.iso(c.deleted_at),
    }


def _answer(request: Request, dialect: Dialect, c: Component, status: int = 200) -> Response:
    return Response(dialect.one(request, _out(c)), status_code=status,
                    headers={"ETag": resources.etag(c)})  # fmt: skip


class ComponentsController(Controller):
    """Components of the devices the caller may see."""

    path = "/components"
    tags = ["topology"]

    @get("/", opt={"scope": "devices.read"})
    async def list_components(
        self,
        request: Request,
        runtime: NamedDependency[Runtime],
        dialect: NamedDependency[Dialect],
        device_id: FromQuery[str | None] = None,
        device_id_camel: Annotated[str | None, QueryParameter(name="deviceId")] = None,
        updated_since: FromQuery[datetime | None] = None,
        updated_since_camel: Annotated[datetime | None, QueryParameter(name="updatedSince")] = None,
        limit: params.PageSize = None,
        page_size: params.CamelSize = None,
        cursor: FromQuery[str | None] = None,
    ) -> dict[str, Any]:
        """In (updated_at, id) order, of one device if given; with updated_since, deleted too."""
        size = params.page_size(dialect, limit, page_size)
        since = resources.epoch_ms(updated_since or updated_since_camel, "updated_since")
        page = await asyncio.to_thread(
            runtime.store.component_page, params.caller(request).boundary,
            device_id or device_id_camel, since, cursor, size,
        )  # fmt: skip
        return dialect.page(request, [_out(c) for c in page.items], page.next_cursor, size)

    @get("/{component_id:str}", opt={"scope": "devices.read"})
    async def get_component(
        self,
        request: Request,
        runtime: NamedDependency[Runtime],
        dialect: NamedDependency[Dialect],
        component_id: FromPath[str],
    ) -> Response[dict[str, Any]]:
        """One component, with its ETag."""
        found = await asyncio.to_thread(
            runtime.store.component, params.caller(request).boundary, component_id
        )
        return _answer(request, dialect, found)

    @post("/", opt={"scope": "devices.write"})
    async def create_component(
        self, request: Request, runtime: NamedDependency[Runtime], dialect: NamedDependency[Dialect]
    ) -> Response[dict[str, Any]]:
        """Add a part to a device: device_id, name, and optionally kind, serial_number, sensors."""
        body = params.json_body(dialect, await request.body())
        try:
            new = msgspec.convert(body, _NewComponent)
        except msgspec.ValidationError as error:
            raise ApiError(422, str(error).replace("`", ""), {"field": "body"}) from None
        caller = params.caller(request)
        component = Component(
            "", caller.org_id, new.device_id, new.name.strip(), new.kind, new.serial_number,
            new.sensor_ids,
        )  # fmt: skip
        made = await asyncio.to_thread(runtime.store.create_component, caller.boundary, component)
        return _answer(request, dialect, made, 201)

    @patch("/{component_id:str}", opt={"scope": "devices.write"})
    async def update_component(
        self,
        request: Request,
        runtime: NamedDependency[Runtime],
        dialect: NamedDependency[Dialect],
        component_id: FromPath[str],
    ) -> Response[dict[str, Any]]:
        """Change name, kind, serial_number or sensor_ids; a stale If-Match gets 409."""
        body = params.json_body(dialect, await request.body())
        expected = params.if_match(request)
        if isinstance(body.get("name"), str) and not body["name"].strip():
            raise Refused("name must not be empty")
        updated = await asyncio.to_thread(
            lambda: runtime.store.update_component(
                params.caller(request).boundary, component_id, expected_version=expected, **body
            )
        )
        return _answer(request, dialect, updated)

    @delete("/{component_id:str}", opt={"scope": "devices.write"}, status_code=204)
    async def delete_component(
        self, request: Request, runtime: NamedDependency[Runtime], component_id: FromPath[str]
    ) -> None:
        """Remove a component (soft: `updated_since` listings show it deleted)."""
        await asyncio.to_thread(
            runtime.store.delete_component, params.caller(request).boundary, component_id
        )
