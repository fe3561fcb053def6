"""BLE devices in the store: validating a connection, adopting a sensor, reading back its setup.

A BLE device's `connection` is `{address, family, bind_key?, gatt?}`. Its
points are store points whose `config` says where the value comes from: an
advert measurement (`{"measurement": "temperature"}`) or a GATT
characteristic read every `interval_s` (`{"gatt": {...}}`).
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from drivers.ble.families import RSSI, FamilyError, family, parse_bind_key
from edge.models import Boundary, Device, Owner, Point, org_of
from edge.store import Conflict, Store

DEVICE_TYPE: Final = "ble"
_ADDRESS = re.compile(r"^[0-9A-F]{2}(:[0-9A-F]{2}){5}$")
# GATT value formats: struct codes, little-endian as the Bluetooth SIG characteristics are.
FORMATS: Final = {
    "uint8": "<B", "int8": "<b", "uint16": "<H", "int16": "<h", "uint32": "<I",
    "int32": "<i", "float32": "<f",
}  # fmt: skip
# GATT points are read no more often than this: every connection costs the sensor battery.
GATT_MIN_INTERVAL_S: Final = 10.0


@dataclass(frozen=True, slots=True)
class GattRead:
    """A characteristic read on a schedule and how its bytes become a number."""

    key: str
    characteristic: str
    format: str
    scale: float
    unit: str | None
    interval_s: float

    def decode(self, raw: bytes) -> float:
        """The value of the raw characteristic bytes (ValueError if they do not fit)."""
        code = FORMATS[self.format]
        if len(raw) < struct.calcsize(code):
            raise ValueError(f"{self.key}: {len(raw)} bytes is too short for {self.format}")
        (number,) = struct.unpack_from(code, raw)
        return number * self.scale


@dataclass(frozen=True, slots=True)
class BleConnection:
    """A validated BLE connection."""

    address: str
    family: str
    bind_key: bytes | None


@dataclass(frozen=True, slots=True)
class BleSetup:
    """A stored BLE device with its connection and points."""

    device: Device
    connection: BleConnection
    # measurement key -> point id, for advert values
    measurements: dict[str, int]
    gatt: tuple[tuple[GattRead, int], ...]


def parse_connection(raw: dict[str, Any]) -> BleConnection:
    """A BLE connection from its JSON form (ValueError names the field)."""
    unknown = set(raw) - {"address", "family", "bind_key"}
    if unknown:
        raise ValueError(f"connection: unknown field {sorted(unknown)[0]}")
    address = raw.get("address")
    if not isinstance(address, str) or not _ADDRESS.match(address.upper()):
        raise ValueError("connection.address must be a Bluetooth address like A4:C1:38:12:34:56")
    fam = raw.get("family")
    if not isinstance(fam, str):
        raise ValueError("connection.family is required")
    try:
        found = family(fam)
        key = parse_bind_key(raw.get("bind_key"))
    except FamilyError as error:
        raise ValueError(f"connection: {error}") from None
    if key is not None and not found.encrypted:
        raise ValueError(f"connection.bind_key: {found.name} adverts are not encrypted")
    return BleConnection(address.upper(), fam, key)


def parse_gatt(raw: Any, where: str) -> GattRead:
    """A GATT point's `gatt` table (ValueError names the field)."""
    if not isinstance(raw, dict):
        raise ValueError(f"{where}.gatt must be an object")
    char = raw.get("characteristic")
    if not isinstance(char, str) or not re.fullmatch(r"[0-9A-Fa-f]{4}|[0-9A-Fa-f-]{36}", char):
        raise ValueError(f"{where}.gatt.characteristic must be a 16-bit or 128-bit UUID")
    fmt = raw.get("format", "uint8")
    if fmt not in FORMATS:
        raise ValueError(f"{where}.gatt.format must be one of {', '.join(FORMATS)}")
    scale = raw.get("scale", 1.0)
    if not isinstance(scale, int | float) or isinstance(scale, bool):
        raise ValueError(f"{where}.gatt.scale must be a number")
    return GattRead("", char.lower(), fmt, float(scale), None, GATT_MIN_INTERVAL_S)


def _point_rows(org_id: str, points: Iterable[dict[str, Any]]) -> list[Point]:
    """A sensor's points, validated (ValueError names the field), for a device yet to be made."""
    rows = []
    for n, raw in enumerate(points, 1):
        where = f"points[{n}]"
        key = raw.get("key")
        if not isinstance(key, str) or not re.fullmatch(r"[a-z0-9_]{1,64}", key):
            raise ValueError(f"{where}.key must be lower-case letters, digits and _")
        unit = raw.get("unit")
        if unit is not None and not isinstance(unit, str):
            raise ValueError(f"{where}.unit must be a string")
        interval = raw.get("interval_s", 60.0)
        if not isinstance(interval, int | float) or isinstance(interval, bool) or interval <= 0:
            raise ValueError(f"{where}.interval_s must be a positive number")
        if "gatt" in raw:
            parse_gatt(raw["gatt"], where)
            interval = max(float(interval), GATT_MIN_INTERVAL_S)
            config = {"gatt": raw["gatt"]}
        else:
            config = {"measurement": raw.get("measurement", key)}
        rows.append(Point(0, "", org_id, "", key, unit, "float64", float(interval), config))
    return rows


def default_points(
    family_id: str, heard: Iterable[tuple[str, str | None]] = ()
) -> list[dict[str, Any]]:
    """Points for a sensor: what it was heard sending, else what its family usually sends."""
    chosen = dict(heard) or dict(family(family_id).measurements)
    chosen.setdefault(RSSI, "dBm")
    return [{"key": k, "unit": u} for k, u in chosen.items()]


def add_device(
    store: Store,
    owner: Owner,
    *,
    name: str,
    connection: dict[str, Any],
    points: Iterable[dict[str, Any]] = (),
    heard: Iterable[tuple[str, str | None]] = (),
    site_id: str | None = None,
    group_id: str | None = None,
    tags: Iterable[str] = (),
    device_id: str = "",
    movement: dict[str, Any] | None = None,
) -> Device:
    """Validate and store a BLE sensor and its points (where a bounded owner may see it);
    Conflict if the sensor is adopted already: one device per sensor."""
    parsed = parse_connection(connection)
    chosen = list(points) or default_points(parsed.family, heard)
    org_id = org_of(owner)
    twin = adopted(store, org_id, parsed.address)
    if twin is not None:
        # A key limited to some devices does not learn the name of one outside them.
        shown = "" if isinstance(owner, Boundary) and owner.narrowed else f" as {twin.name}"
        raise Conflict(f"sensor {parsed.address} is already adopted{shown}")
    rows = _point_rows(org_id, chosen)
    stored = {**connection, "address": parsed.address}
    return store.create_device(
        Device(id=device_id, org_id=org_id, name=name, type=DEVICE_TYPE, site_id=site_id,
               group_id=group_id, tags=list(tags), connection=stored, profile=parsed.family,
               movement=movement),
        owner,
        rows,
    )  # fmt: skip


def adopted(store: Store, org_id: str, address: str) -> Device | None:
    """The live device a sensor (by address) was adopted as, if any."""
    wanted = address.upper()
    found = (d for d in store.devices(org_id) if d.type == DEVICE_TYPE
             and str(d.connection.get("address", "")).upper() == wanted)  # fmt: skip
    return next(found, None)


def setup(store: Store, device: Device) -> BleSetup:
    """A stored device's connection and point bindings, validated (ValueError names the field)."""
    connection = parse_connection(device.connection)
    measurements: dict[str, int] = {}
    gatt: list[tuple[GattRead, int]] = []
    for point in store.points(device.org_id, device.id):
        if "gatt" in point.config:
            read = parse_gatt(point.config["gatt"], f"point {point.key}")
            gatt.append((GattRead(point.key, read.characteristic, read.format, read.scale,
                                  point.unit, point.interval_s), point.id))  # fmt: skip
        else:
            measurements[str(point.config.get("measurement", point.key))] = point.id
    return BleSetup(device, connection, measurements, tuple(gatt))
