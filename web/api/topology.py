"""Topology: `/sites`, `/device-groups`, `/sensors` (a device's points) and `/device-profiles`."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, QueryParameter

from edge.runtime import Runtime
from web.api import params, resources
from web.api.dialect import Dialect
from web.api.errors import ApiError

SinceCamel = Annotated[datetime | None, QueryParameter(name="updatedSince")]


def _grouping(g: Any) -> dict[str, Any]:
    return {
        "id": g.id,
        "name": g.name,
        "created_at": resources.iso(g.created_at),
        "updated_at": resources.iso(g.updated_at),
        "deleted_at": resources.iso(g.deleted_at),
    }


class _GroupingController(Controller):
    """Sites and device groups: the same resource shape over two tables."""

    table = ""

    @get("/", opt={"scope": "devices.read"})
    async def list_groupings(
        self,
        request: Request,
        runtime: NamedDependency[Runtime],
        dialect: NamedDependency[Dialect],
        limit: params.PageSize = None,
        page_size: params.CamelSize = None,
        cursor: FromQuery[str | None] = None,
        updated_since: FromQuery[datetime | None] = None,
        updated_since_camel: SinceCamel = None,
    ) -> dict[str, Any]:
        """In (updated_at, id) order; with updated_since, deleted ones too."""
        size = params.page_size(dialect, limit, page_size)
        since = resources.epoch_ms(updated_since or updated_since_camel, "updated_since")
        page = await asyncio.to_thread(
            runtime.store.grouping_page,
            self.table,
            params.caller(request).org_id,
            since,
            cursor,
            size,
        )
        return dialect.page(request, [_grouping(g) for g in page.items], page.next_cursor, size)

    @get("/{object_id:str}", opt={"scope": "devices.read"})
    async def get_grouping(
        self,
        request: Request,
        runtime: NamedDependency[Runtime],
        dialect: NamedDependency[Dialect],
        object_id: FromPath[str],
    ) -> dict[str, Any]:
        """One of them."""
        found = await asyncio.to_thread(
            runtime.store.grouping, self.table, params.caller(request).org_id, object_id
        )
        return dialect.one(request, _grouping(found))

    @post("/", opt={"scope": "devices.write"})
    async def create_grouping(
        self, request: Request, runtime: NamedDependency[Runtime], dialect: NamedDependency[Dialect]
    ) -> Response[dict[str, Any]]:
        """Create one; the body names it."""
        body = params.json_body(dialect, await request.body())
        name = body.get("name")
        if not isinstance(name, str) or not name.strip():
            raise ApiError(422, "name is required.", {"field": "name"})
        store, org = runtime.store, params.caller(request).org_id
        make = store.create_site if self.table == "sites" else store.create_device_group
        made = await asyncio.to_thread(make, org, name.strip())
        return Response(dialect.one(request, _grouping(made)), status_code=201)


class SitesController(_GroupingController):
    """Sites (locations) of the organization."""

    path = "/sites"
    tags = ["topology"]
    table = "sites"


class DeviceGroupsController(_GroupingController):
    """Device groups of the organization."""

    path = "/device-groups"
    tags = ["topology"]
    table = "device_groups"


class SensorsController(Controller):
    """A device's measurable points (Modbus tags, pushed metrics)."""

    path = "/sensors"
    tags = ["topology"]

    @get("/", opt={"scope": "devices.read"})
    async def list_sensors(
        self,
        request: Request,
        runtime: NamedDependency[Runtime],
        dialect: NamedDependency[Dialect],
        device_id: FromQuery[str | None] = None,
        device_id_camel: Annotated[str | None, QueryParameter(name="deviceId")] = None,
    ) -> dict[str, Any]:
        """Every point of the organization, or of one device."""
        org = params.caller(request).org_id
        device = device_id or device_id_camel
        if device is not None:
            await asyncio.to_thread(runtime.store.device, org, device)
        points = await asyncio.to_thread(runtime.store.points, org, device)
        items = [
            {"id": p.uid, "device_id": p.device_id, "key": p.key, "unit": p.unit,
             "data_type": p.data_type, "interval_s": p.interval_s, "config": p.config,
             "updated_at": resources.iso(p.updated_at)}
            for p in points
        ]  # fmt: skip
        return dialect.page(request, items, None, len(items))


class DeviceProfilesController(Controller):
    """The built-in device profiles (register maps), read-only."""

    path = "/device-profiles"
    tags = ["profiles"]

    @get("/", opt={"scope": "devices.read"})
    async def list_profiles(
        self, request: Request, runtime: NamedDependency[Runtime], dialect: NamedDependency[Dialect]
    ) -> dict[str, Any]:
        """Every built-in profile, without its points."""
        items = [{k: v for k, v in p.items() if k != "points"} for p in runtime.profiles()]
        return dialect.page(request, items, None, len(items))

    @get("/{profile_id:str}", opt={"scope": "devices.read"})
    async def get_profile(
        self,
        request: Request,
        runtime: NamedDependency[Runtime],
        dialect: NamedDependency[Dialect],
        profile_id: FromPath[str],
    ) -> dict[str, Any]:
        """One profile with its points."""
        for profile in runtime.profiles():
            if profile["id"] == profile_id:
                return dialect.one(request, profile)
        raise ApiError(404, f"No device profile {profile_id}.")
