"""The maintenance surface of seed 000: `/assets` (a hierarchy, linked to devices),
`/service-reports` and `/service-visits` (made by technicians on site, kept here while
the uplink is down, pushed upstream), `/appointments`, `/customers`, `/vendors` and
`/inventory/parts` (master data, pulled from the upstream and writable there).

Each controller is the shared one of `records` plus its listing's filters (a dependency
taking both spellings, `asset_id` / `assetId`). Visits and appointments take a window of
at most 366 days (`from`/`fromUtc`, `to`/`toUtc`), service reports one on their
created-on time.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Final

from litestar import Request, get
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, QueryParameter

from edge.runtime import Runtime
from edge.store import RecordFilter
from web.api import params
from web.api.dialect import Dialect
from web.api.records import STATUS_ACTIVE, Paging, Status, Window, controller, listing, wanted
from web.api.series import DeviceId

WINDOW_MS: Final = 366 * 86_400_000
AssetId = Annotated[str | None, QueryParameter(name="assetId")]


def _camel(name: str) -> Any:
    return Annotated[str | None, QueryParameter(name=name)]


async def _assets(
    group_id: FromQuery[str | None] = None,
    group_id_camel: _camel("groupId") = None,
    customer_id: FromQuery[str | None] = None,
    customer_id_camel: _camel("customerId") = None,
    status: Status = None,
) -> RecordFilter:
    return wanted(group_id=group_id or group_id_camel, customer_id=customer_id or customer_id_camel,
                  active=STATUS_ACTIVE.get(status or "all"))  # fmt: skip


async def _reports(
    window: NamedDependency[Window],
    asset_id: FromQuery[str | None] = None,
    asset_id_camel: AssetId = None,
    device_id: FromQuery[str | None] = None,
    device_id_camel: DeviceId = None,
    state_wanted: Annotated[int | None, QueryParameter(name="state", ge=0, le=3)] = None,
) -> RecordFilter:
    return wanted(window.span(), asset_id=asset_id or asset_id_camel,
                  device_id=device_id or device_id_camel, state=state_wanted)  # fmt: skip


async def _visits(
    window: NamedDependency[Window],
    asset_id: FromQuery[str | None] = None,
    asset_id_camel: AssetId = None,
    device_id: FromQuery[str | None] = None,
    device_id_camel: DeviceId = None,
) -> RecordFilter:
    return wanted(window.span(WINDOW_MS), asset_id=asset_id or asset_id_camel,
                  device_id=device_id or device_id_camel)  # fmt: skip


async def _appointments(
    window: NamedDependency[Window],
    user_id: FromQuery[str | None] = None,
    user_id_camel: _camel("userId") = None,
) -> RecordFilter:
    return wanted(window.span(WINDOW_MS), user_id=user_id or user_id_camel)


async def _customers(
    external_system: FromQuery[str | None] = None,
    external_system_camel: _camel("externalSystem") = None,
) -> RecordFilter:
    return wanted(external_system=external_system or external_system_camel)


async def _vendors() -> RecordFilter:
    return wanted()


async def _parts(
    vendor_id: FromQuery[str | None] = None,
    vendor_id_camel: _camel("vendorId") = None,
    status: Status = None,
) -> RecordFilter:
    return wanted(vendor_id=vendor_id or vendor_id_camel, active=STATUS_ACTIVE.get(status or "all"))


class AssetsController(
    controller("assets", "/assets", ("assets.read", "assets.write"), _assets,
               "By group, customer and status (active, inactive or all).")
):  # fmt: skip
    """Assets: machines and their parts, in a hierarchy, each optionally on a device."""

    @get("/{record_id:str}/children", opt={"scope": "assets.read"})
    async def list_children(
        self,
        request: Request,
        runtime: NamedDependency[Runtime],
        dialect: NamedDependency[Dialect],
        record_id: FromPath[str],
        paging: NamedDependency[Paging],
    ) -> dict[str, Any]:
        """The assets whose parent is this one (404 if it is not the caller's)."""
        await asyncio.to_thread(runtime.store.record, params.caller(request).boundary, "assets",
                                record_id)  # fmt: skip
        where = RecordFilter({"parent_id": record_id}, updated_since=paging.since)
        return await listing(request, runtime, dialect, "assets", where, paging.cursor, paging.size)


# Service reports and visits: made by technicians on site, kept here, pushed upstream;
# a visit may be changed afterwards (PATCH), a report not.
ServiceReportsController = controller(
    "service_reports", "/service-reports", ("service_reports.read", "service_reports.write"),
    _reports, "By created-on window (fromUtc, toUtc), asset, device and state.",
)  # fmt: skip
ServiceVisitsController = controller(
    "service_visits", "/service-visits", ("service_visits.read", "service_visits.write"),
    _visits, "Started in a window of at most 366 days, by asset and device.",
)  # fmt: skip
# Master data: pulled from the upstream, and writable there.
AppointmentsController = controller(
    "appointments", "/appointments", ("appointments.read", "appointments.write"),
    _appointments, "Starting in a window of at most 366 days, by user.",
)  # fmt: skip
CustomersController = controller(
    "customers", "/customers", ("customers.read", "customers.write"), _customers,
    "By the ERP or source system the customer comes from; a key limited to customers sees "
    "only those.",
)  # fmt: skip
VendorsController = controller(
    "vendors", "/vendors", ("vendors.read", "vendors.write"), _vendors, "Every vendor."
)
PartsController = controller(
    "parts", "/inventory/parts", ("inventory.read", "inventory.write"), _parts,
    "Machine parts and inventory items, by vendor and status (active, inactive or all).",
)  # fmt: skip
