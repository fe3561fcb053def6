"""The maintenance surface of seed 000: `/assets` (a hierarchy, linked to devices),
`/service-reports` and `/service-visits` (made by technicians on site, kept here while
the uplink is down, pushed upstream), `/appointments`, `/customers`, `/vendors` and
`/inventory/parts` (master data, pulled from the upstream and writable there).

Listings take their filters in both spellings (`asset_id` / `assetId`); every list is a
keyset page in (updated_at, id) order with `updated_since`. Visits and appointments take
a window of at most 366 days (`from`/`fromUtc`, `to`/`toUtc`), service reports one on
their created-on time.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Final

from litestar import Request, get
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, QueryParameter

from edge.runtime import Runtime
from edge.store import RecordFilter
from web.api import params, resources
from web.api.dialect import Dialect
from web.api.records import STATUS_ACTIVE, SinceCamel, Status, controller, listing, span
from web.api.series import DeviceId, From, FromUtc, To, ToUtc

WINDOW_MS: Final = 366 * 86_400_000


@dataclass(frozen=True, slots=True)
class Query:
    """What every listing reads: page size, cursor and updated_since."""

    size: int
    cursor: str | None
    since: int | None

    def where(self, window: tuple[int | None, int | None] = (None, None), **equal: Any
              ) -> RecordFilter:  # fmt: skip
        """The store's filter: the given columns (None: not filtered) and the window."""
        wanted = {k: v for k, v in equal.items() if v is not None}
        return RecordFilter(wanted, window[0], window[1], self.since)


async def _query(
    dialect: NamedDependency[Dialect],
    limit: params.PageSize = None,
    page_size: params.CamelSize = None,
    cursor: FromQuery[str | None] = None,
    updated_since: FromQuery[datetime | None] = None,
    updated_since_camel: SinceCamel = None,
) -> Query:
    since = resources.epoch_ms(updated_since or updated_since_camel, "updated_since")
    return Query(params.page_size(dialect, limit, page_size), cursor, since)


@dataclass(frozen=True, slots=True)
class Window:
    """A listing's time window as asked (`from`/`fromUtc`, `to`/`toUtc`)."""

    start: datetime | None
    end: datetime | None

    def span(self, longest_ms: int | None = None) -> tuple[int | None, int | None]:
        """[from, to) in epoch ms, within `longest_ms` if given (else 400)."""
        return span(self.start, self.end, longest_ms)


async def _window(
    start: From = None, start_utc: FromUtc = None, end: To = None, end_utc: ToUtc = None
) -> Window:
    return Window(start or start_utc, end or end_utc)


@dataclass(frozen=True, slots=True)
class Links:
    """The asset and device a listing of linked records is narrowed to."""

    asset_id: str | None
    device_id: str | None


async def _links(
    asset_id: FromQuery[str | None] = None,
    asset_id_camel: Annotated[str | None, QueryParameter(name="assetId")] = None,
    device_id: FromQuery[str | None] = None,
    device_id_camel: DeviceId = None,
) -> Links:
    return Links(asset_id or asset_id_camel, device_id or device_id_camel)


QUERY: Final = {"paging": Provide(_query), "links": Provide(_links), "window": Provide(_window)}
Q = NamedDependency[Query]


class AssetsController(controller("assets", "assets.read", "assets.write")):
    """Assets: machines and their parts, in a hierarchy, each optionally on a device."""

    path = "/assets"
    tags = ["maintenance"]
    dependencies = QUERY

    @get("/", opt={"scope": "assets.read"})
    async def list_assets(
        self,
        request: Request,
        runtime: NamedDependency[Runtime],
        dialect: NamedDependency[Dialect],
        paging: Q,
        group_id: FromQuery[str | None] = None,
        group_id_camel: Annotated[str | None, QueryParameter(name="groupId")] = None,
        customer_id: FromQuery[str | None] = None,
        customer_id_camel: Annotated[str | None, QueryParameter(name="customerId")] = None,
        status: Status = None,
    ) -> dict[str, Any]:
        """By group, customer and status (active, inactive or all, the default)."""
        where = paging.where(group_id=group_id or group_id_camel,
                            customer_id=customer_id or customer_id_camel,
                            active=STATUS_ACTIVE.get(status or "all"))  # fmt: skip
        return await listing(request, runtime, dialect, "assets", where, paging.cursor, paging.size)

    @get("/{record_id:str}/children", opt={"scope": "assets.read"})
    async def list_children(
        self,
        request: Request,
        runtime: NamedDependency[Runtime],
        dialect: NamedDependency[Dialect],
        record_id: FromPath[str],
        paging: Q,
    ) -> dict[str, Any]:
        """The assets whose parent is this one (404 if it is not the caller's)."""
        await asyncio.to_thread(runtime.store.record, params.caller(request).boundary, "assets",
                                record_id)  # fmt: skip
        where = paging.where(parent_id=record_id)
        return await listing(request, runtime, dialect, "assets", where, paging.cursor, paging.size)


class ServiceReportsController(
    controller("service_reports", "service_reports.read", "service_reports.write", False)
):
    """Service reports written by technicians on site; kept here and pushed upstream."""

    path = "/service-reports"
    tags = ["maintenance"]
    dependencies = QUERY

    @get("/", opt={"scope": "service_reports.read"})
    async def list_service_reports(
        self,
        request: Request,
        runtime: NamedDependency[Runtime],
        dialect: NamedDependency[Dialect],
        paging: Q,
        links: NamedDependency[Links],
        window: NamedDependency[Window],
        wanted: Annotated[int | None, QueryParameter(name="state", ge=0, le=3)] = None,
    ) -> dict[str, Any]:
        """By created-on window (`fromUtc`, `toUtc`), asset, device and state."""
        where = paging.where(window.span(), asset_id=links.asset_id, device_id=links.device_id,
                            state=wanted)  # fmt: skip
        return await listing(request, runtime, dialect, "service_reports", where, paging.cursor,
                             paging.size)  # fmt: skip


class ServiceVisitsController(
    controller("service_visits", "service_visits.read", "service_visits.write", False)
):
    """Service visits: who went to which asset when, its status and costs."""

    path = "/service-visits"
    tags = ["maintenance"]
    dependencies = QUERY

    @get("/", opt={"scope": "service_visits.read"})
    async def list_service_visits(
        self,
        request: Request,
        runtime: NamedDependency[Runtime],
        dialect: NamedDependency[Dialect],
        paging: Q,
        links: NamedDependency[Links],
        window: NamedDependency[Window],
    ) -> dict[str, Any]:
        """Started in a window of at most 366 days, by asset and device."""
        where = paging.where(window.span(WINDOW_MS), asset_id=links.asset_id,
                            device_id=links.device_id)  # fmt: skip
        return await listing(request, runtime, dialect, "service_visits", where, paging.cursor,
                             paging.size)  # fmt: skip


class AppointmentsController(controller("appointments", "appointments.read", "appointments.write")):
    """Planned service appointments, for calendars and planning."""

    path = "/appointments"
    tags = ["maintenance"]
    dependencies = QUERY

    @get("/", opt={"scope": "appointments.read"})
    async def list_appointments(
        self,
        request: Request,
        runtime: NamedDependency[Runtime],
        dialect: NamedDependency[Dialect],
        paging: Q,
        window: NamedDependency[Window],
        user_id: FromQuery[str | None] = None,
        user_id_camel: Annotated[str | None, QueryParameter(name="userId")] = None,
    ) -> dict[str, Any]:
        """Starting in a window of at most 366 days, by user."""
        where = paging.where(window.span(WINDOW_MS), user_id=user_id or user_id_camel)
        return await listing(request, runtime, dialect, "appointments", where, paging.cursor,
                             paging.size)  # fmt: skip


class CustomersController(controller("customers", "customers.read", "customers.write")):
    """The customer directory; a key limited to customers sees only those."""

    path = "/customers"
    tags = ["maintenance"]
    dependencies = QUERY

    @get("/", opt={"scope": "customers.read"})
    async def list_customers(
        self,
        request: Request,
        runtime: NamedDependency[Runtime],
        dialect: NamedDependency[Dialect],
        paging: Q,
        external_system: FromQuery[str | None] = None,
        external_system_camel: Annotated[str | None, QueryParameter(name="externalSystem")] = None,
    ) -> dict[str, Any]:
        """By the ERP or source system the customer comes from."""
        where = paging.where(external_system=external_system or external_system_camel)
        return await listing(request, runtime, dialect, "customers", where, paging.cursor,
                             paging.size)  # fmt: skip


class VendorsController(controller("vendors", "vendors.read", "vendors.write")):
    """Vendors of parts and services."""

    path = "/vendors"
    tags = ["maintenance"]
    dependencies = QUERY

    @get("/", opt={"scope": "vendors.read"})
    async def list_vendors(
        self,
        request: Request,
        runtime: NamedDependency[Runtime],
        dialect: NamedDependency[Dialect],
        paging: Q,
    ) -> dict[str, Any]:
        """Every vendor of the organization."""
        return await listing(request, runtime, dialect, "vendors", paging.where(), paging.cursor,
                             paging.size)  # fmt: skip


class PartsController(controller("parts", "inventory.read", "inventory.write")):
    """Machine parts and inventory items."""

    path = "/inventory/parts"
    tags = ["maintenance"]
    dependencies = QUERY

    @get("/", opt={"scope": "inventory.read"})
    async def list_parts(
        self,
        request: Request,
        runtime: NamedDependency[Runtime],
        dialect: NamedDependency[Dialect],
        paging: Q,
        vendor_id: FromQuery[str | None] = None,
        vendor_id_camel: Annotated[str | None, QueryParameter(name="vendorId")] = None,
        status: Status = None,
    ) -> dict[str, Any]:
        """By vendor and status (active, inactive or all, the default)."""
        where = paging.where(vendor_id=vendor_id or vendor_id_camel,
                            active=STATUS_ACTIVE.get(status or "all"))  # fmt: skip
        return await listing(request, runtime, dialect, "parts", where, paging.cursor, paging.size)
