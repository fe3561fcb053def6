"""Modbus devices in the store: adding one from a profile, and reading back its bus setup.

A device's points are stored as store points whose `config` is the full
point definition, so the store, the API and the poller share one shape.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import msgspec

from drivers.modbus import profiles
from drivers.modbus.bus import ModbusConnection, parse_connection
from drivers.modbus.points import ModbusPoint, parse_point
from drivers.modbus.units import Binding
from edge.models import Device, Owner, Point, org_of
from edge.store import Store


@dataclass(frozen=True, slots=True)
class DeviceSetup:
    """A stored Modbus device with its connection and points validated."""

    device: Device
    connection: ModbusConnection
    bindings: tuple[Binding, ...]
    profile_max_block: int | None


def resolve_points(
    profile_id: str | None, points: Iterable[dict[str, Any]] = ()
) -> tuple[list[ModbusPoint], int | None]:
    """The profile's points with `points` added (or replacing those with the same key)."""
    profile = profiles.load(profile_id) if profile_id else None
    merged = {p.key: p for p in (profile.points if profile else ())}
    for n, raw in enumerate(points, 1):
        point = parse_point(raw, f"points[{n}]")
        merged[point.key] = point
    if not merged:
        raise ValueError("a Modbus device needs a profile or at least one point")
    return list(merged.values()), profile.max_block if profile else None


def add_device(
    store: Store,
    owner: Owner,
    *,
    name: str,
    transport: str,
    connection: dict[str, Any],
    profile: str | None = None,
    points: Iterable[dict[str, Any]] = (),
    site_id: str | None = None,
    group_id: str | None = None,
    tags: Iterable[str] = (),
    device_id: str = "",
    movement: dict[str, Any] | None = None,
) -> Device:
    """Validate and store a Modbus device and its points (where a bounded owner may see it)."""
    parse_connection(transport, connection)
    resolved, _ = resolve_points(profile, points)
    org_id = org_of(owner)
    return store.create_device(
        Device(id=device_id, org_id=org_id, name=name, type=transport, site_id=site_id,
               group_id=group_id, tags=list(tags), connection=connection, profile=profile,
               movement=movement),
        owner,
        [Point(0, "", org_id, "", p.key, p.unit, p.data_type, p.interval_s,
               msgspec.to_builtins(p)) for p in resolved],
    )  # fmt: skip


def setup(store: Store, device: Device) -> DeviceSetup:
    """A stored device's connection and point bindings, validated (ValueError names the field)."""
    connection = parse_connection(device.type, device.connection)
    bindings = tuple(
        Binding(parse_point(p.config, f"point {p.key}"), p.id)
        for p in store.points(device.org_id, device.id)
    )
    max_block = profiles.load(device.profile).max_block if device.profile else None
    return DeviceSetup(device, connection, bindings, max_block)


def add_from_body(store: Store, owner: Owner, body: dict[str, Any]) -> Device:
    """`add_device` for an API body (snake_case): name, type, connection, profile, points."""
    return add_device(
        store,
        owner,
        name=body["name"],
        transport=body["type"],
        connection=body.get("connection") or {},
        profile=body.get("profile"),
        points=body.get("points") or (),
        site_id=body.get("site_id"),
        group_id=body.get("group_id"),
        tags=body.get("tags") or (),
        device_id=body.get("id") or "",
        movement=body.get("movement"),
    )
