"""Topology: `/sites`, `/device-groups`, `/sensors` (a device's points) and `/device-profiles`."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, QueryParameter

from edge.models import Site
from edge.runtime import Runtime
from web.api import params, resources
from web.api.dialect import Dialect
from web.api.errors import ApiError

SinceCamel = Annotated[datetime | None, QueryParameter(name="updatedSince")]


def _grouping(g: Any) -> dict[str, Any]:
    out = {
        "id": g.id,
        "name": g.name,
        "created_at": resources.iso(g.created_at),
        "updated_at": resources.iso(g.updated_at),
        "deleted_at": resources.iso(g.deleted_at),
    }
    if isinstance(g, Site):
        out["customer_id"] = g.customer_id
    return out


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
            params.caller(request).boundary,
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
            runtime.store.grouping, self.table, params.caller(request).boundary, object_id
        )
        return dialect.one(request, _grouping(found))

    @post("/", opt={"scope": "devices.write"})
    async def create_grouping(
        self, request: Request, runtime: NamedDependency[Runtime], dialect: NamedDependency[Dialect]
    ) -> Response[dict[str, Any]]:
        """Create one; the body names it (and a site's `customer_id`, if it serves one)."""
        body = params.json_body(dialect, await request.body())
        name = body.get("name")
        if not isinstance(name, str) or not name.strip():
            raise ApiError(422, "name is required.", {"field": "name"})
        store, owner = runtime.store, params.caller(request).boundary
        if self.table == "sites":
            customer = body.get("customer_id")
            if customer is not None and (not isinstance(customer, str) or not customer.strip()):
                raise ApiError(422, "customer_id must be a non-empty string.",
                               {"field": "customer_id"})  # fmt: skip
            made = await asyncio.to_thread(store.create_site, owner, name.strip(), customer)
        else:
            made = await asyncio.to_thread(store.create_device_group, owner, name.strip())
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
        org = params.caller(request).boundary
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


class _CatalogueController(Controller):
    """A read-only catalogue the drivers provide: listed in brief, fetched in full."""

    kind = ""

    def entries(self, runtime: Runtime) -> list[dict[str, Any]]:
        raise NotImplementedError

    @get("/", opt={"scope": "devices.read"})
    async def list_entries(
        self, request: Request, runtime: NamedDependency[Runtime], dialect: NamedDependency[Dialect]
    ) -> dict[str, Any]:
        """Every entry (a device profile without its points)."""
        items = [{k: v for k, v in p.items() if k != "points"} for p in self.entries(runtime)]
        return dialect.page(request, items, None, len(items))

    @get("/{entry_id:str}", opt={"scope": "devices.read"})
    async def get_entry(
        self,
        request: Request,
        runtime: NamedDependency[Runtime],
        dialect: NamedDependency[Dialect],
        entry_id: FromPath[str],
    ) -> dict[str, Any]:
        """One entry in full."""
        for entry in self.entries(runtime):
            if entry["id"] == entry_id:
                return dialect.one(request, entry)
        raise ApiError(404, f"No {self.kind} {entry_id}.")


class DeviceProfilesController(_CatalogueController):
    """The built-in device profiles (register maps of meters, inverters, PLCs)."""

    path = "/device-profiles"
    tags = ["profiles"]
    kind = "device profile"

    def entries(self, runtime: Runtime) -> list[dict[str, Any]]:
        return runtime.profiles()


class SensorProfilesController(_CatalogueController):
    """The sensor profiles: how a point's raw data decodes (Modbus data types, BLE families)."""

    path = "/sensor-profiles"
    tags = ["profiles"]
    kind = "sensor profile"

    def entries(self, runtime: Runtime) -> list[dict[str, Any]]:
        return runtime.sensor_profiles()
