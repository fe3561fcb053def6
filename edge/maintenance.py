"""The maintenance domain (seed 000): assets, customers, vendors, inventory parts,
appointments, service reports and service visits, as kinds of one record.

Every kind shares one lifecycle (a prefixed id, a version, soft delete, keyset pages,
sync) and differs only in its fields, the few of them a listing filters on, and which
part of an organization a bounded key may see of it. So a kind is data: the schema of
its fields (a msgspec struct, times in epoch ms), the fields mirrored into indexed
columns of the one `service_records` table, and its reach rule. Master data (assets,
customers, vendors, parts, appointments) is pulled from the upstream; service reports
and visits are made on site and pushed to it (a visit's later changes too).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, Final, Literal

import msgspec

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Text = Annotated[str, msgspec.Meta(max_length=4000)]
Cost = Annotated[float, msgspec.Meta(ge=0)]
Ref = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]

# A service report's `state` and its `stateText`, as Sepolo shows them.
REPORT_STATES: Final = ("Open", "InProgress", "Completed", "Cancelled")
VISIT_STATUSES: Final = ("planned", "open", "completed", "cancelled")


class AssetFields(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: Name
    device_id: Ref | None = None
    parent_id: Ref | None = None
    group_id: Ref | None = None
    customer_id: Ref | None = None
    is_active: bool = True
    category: Name | None = None
    serial_number: Name | None = None
    location: Name | None = None
    next_service_at: int | None = None


class CustomerFields(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: Name
    external_id: Name | None = None
    external_system: Name | None = None
    email: Name | None = None
    phone: Name | None = None


class VendorFields(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: Name
    email: Name | None = None
    phone: Name | None = None
    website: Name | None = None


class PartFields(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: Name
    part_number: Name | None = None
    vendor_id: Ref | None = None
    unit: Name | None = None
    unit_price: Cost | None = None
    quantity: Annotated[int, msgspec.Meta(ge=0)] = 0
    is_active: bool = True


class AppointmentFields(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    title: Name
    starts_at: int
    ends_at: int | None = None
    user_id: Ref | None = None
    asset_id: Ref | None = None
    customer_id: Ref | None = None
    status: Literal["planned", "confirmed", "done", "cancelled"] = "planned"
    notes: Text | None = None


class PartUsed(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    part_id: Ref
    quantity: Annotated[float, msgspec.Meta(gt=0)] = 1


class ServiceReportFields(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    asset_id: Ref | None = None
    device_id: Ref | None = None
    state: Annotated[int, msgspec.Meta(ge=0, le=len(REPORT_STATES) - 1)] = 0
    notes: Text | None = None
    parts_used: list[PartUsed] = []
    technician: Name | None = None
    visit_id: Ref | None = None
    # When the technician made it on site (the created-on of listings); the server's
    # clock when absent.
    created_on: int | None = None


class ServiceVisitFields(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    started_at: int
    ended_at: int | None = None
    asset_id: Ref | None = None
    device_id: Ref | None = None
    user_id: Ref | None = None
    technician: Name | None = None
    status: Literal["planned", "open", "completed", "cancelled"] = "open"
    estimated_cost: Cost | None = None
    actual_cost: Cost | None = None
    notes: Text | None = None


@dataclass(frozen=True, slots=True)
class Kind:
    """One kind of maintenance record: its fields and how the store indexes and narrows it.

    `columns` maps a field to the indexed column mirroring it; `refs` names the kind (or
    `devices`) a reference field must point at; `reach` is how a bounded key is narrowed:
    `asset` (its own group and customer), `linked` (through its asset, device and
    customer), `customer` (the key's customers), `org` (not narrowed).
    """

    name: str
    prefix: str
    noun: str
    schema: type[msgspec.Struct]
    columns: dict[str, str]
    times: tuple[str, ...]
    reach: str
    refs: dict[str, str] = field(default_factory=dict)
    # Made on site and pushed upstream (each change once more, until the upstream has it).
    pushed: bool = False
    # What may follow a create through the API: master data is changed and deleted; a
    # service report is never changed, a service visit only changed (its status, costs).
    writes: tuple[str, ...] = ("patch", "delete")

    def validate(self, fields: dict[str, Any]) -> dict[str, Any]:
        """The fields checked against the schema, defaults filled in; ValueError if not valid."""
        try:
            return msgspec.to_builtins(msgspec.convert(fields, self.schema))
        except msgspec.ValidationError as error:
            raise ValueError(str(error).replace("`", "")) from None


KINDS: Final = {
    k.name: k
    for k in (
        Kind("assets", "ast", "asset", AssetFields,
             {"name": "name", "device_id": "device_id", "parent_id": "parent_id",
              "group_id": "group_id", "customer_id": "customer_id", "is_active": "active",
              "next_service_at": "at"},
             ("next_service_at",), "asset",
             {"device_id": "devices", "parent_id": "assets", "group_id": "device_groups"}),
        Kind("customers", "cus", "customer", CustomerFields,
             {"name": "name", "external_system": "external_system"}, (), "customer"),
        Kind("vendors", "ven", "vendor", VendorFields, {"name": "name"}, (), "org"),
        Kind("parts", "prt", "part", PartFields,
             {"name": "name", "vendor_id": "vendor_id", "is_active": "active"}, (), "org",
             {"vendor_id": "vendors"}),
        Kind("appointments", "apt", "appointment", AppointmentFields,
             {"title": "name", "starts_at": "at", "user_id": "user_id", "asset_id": "asset_id",
              "customer_id": "customer_id", "status": "state"},
             ("starts_at", "ends_at"), "linked", {"asset_id": "assets"}),
        Kind("service_reports", "svr", "service_report", ServiceReportFields,
             {"created_on": "at", "asset_id": "asset_id", "device_id": "device_id",
              "state": "state"},
             ("created_on",), "linked",
             {"asset_id": "assets", "device_id": "devices", "visit_id": "service_visits"},
             pushed=True, writes=()),
        Kind("service_visits", "vis", "service_visit", ServiceVisitFields,
             {"started_at": "at", "asset_id": "asset_id", "device_id": "device_id",
              "user_id": "user_id", "status": "state"},
             ("started_at", "ended_at"), "linked", {"asset_id": "assets", "device_id": "devices"},
             pushed=True, writes=("patch",)),
    )
}  # fmt: skip


class Record(msgspec.Struct, frozen=True):
    """A maintenance record of one kind; `fields` follow the kind's schema."""

    kind: str
    id: str
    org_id: str
    fields: dict[str, Any]
    created_at: int = 0
    updated_at: int = 0
    deleted_at: int | None = None
    version: int = 1


class AssetsSummary(msgspec.Struct, frozen=True):
    """Asset counts and the maintenance cost (the actual cost of their service visits)."""

    total_assets: int
    active_assets: int
    inactive_assets: int
    with_devices: int
    overdue_service: int
    total_maintenance_cost: float


class ServicePerformance(msgspec.Struct, frozen=True):
    """Service visits started in a window, by status, and their costs."""

    total_visits: int
    completed_visits: int
    open_visits: int
    estimated_cost: float
    actual_cost: float


class TelemetryDay(msgspec.Struct, frozen=True):
    """One device's good readings of one UTC day: how many, and each metric's average."""

    device_id: str
    day_ms: int
    samples: int
    averages: dict[str, float]
