"""SunSpec discovery: find the `SunS` marker, walk the model chain, and turn models into points.

The model definitions (names, types, units, scale-factor links) come from
pysunspec2's bundled JSON models; the reading goes through the gateway's own
pymodbus client, so discovery shares the bus like any other transaction.
SunSpec scale factors are registers of their own; discovery reads their
current values and bakes them into each point's static `scale`, which holds
for the devices that fix them (nearly all do).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

import msgspec
from sunspec2 import device as sunspec_models

from drivers.modbus import codec
from drivers.modbus.bus import bus_key, make_client, parse_connection
from drivers.modbus.points import ModbusPoint, parse_point

# "SunS" as two big-endian registers.
MARKER: Final = (0x5375, 0x6E53)
# Where the marker may sit, in the order the SunSpec specification lists them.
BASES: Final = (40000, 0, 50000)
END_MODEL: Final = 0xFFFF
# Real devices declare a handful of models; a chain longer than this is garbage.
MAX_MODELS: Final = 100
# Registers per read while walking a model (the protocol's limit).
CHUNK: Final = 125
# SunSpec types as the gateway's data types.
TYPES: Final = {
    "uint16": "uint16", "int16": "int16", "acc16": "uint16", "enum16": "uint16",
    "bitfield16": "uint16", "count": "uint16", "uint32": "uint32", "int32": "int32",
    "acc32": "uint32", "enum32": "uint32", "bitfield32": "uint32", "uint64": "uint64",
    "int64": "int64", "acc64": "uint64", "float32": "float32", "float64": "float64",
    "string": "string",
}  # fmt: skip
# The specification's "not implemented" value of each type.
NOT_IMPLEMENTED: Final = {
    "uint16": 0xFFFF, "int16": -0x8000, "enum16": 0xFFFF, "bitfield16": 0xFFFF,
    "count": 0, "uint32": 0xFFFFFFFF, "int32": -0x80000000, "enum32": 0xFFFFFFFF,
    "bitfield32": 0xFFFFFFFF, "uint64": 0xFFFFFFFFFFFFFFFF, "int64": -0x8000000000000000,
    "sunssf": -0x8000,
}  # fmt: skip
# Accumulators read 0 when not implemented, but a new meter's counter is 0 too: kept.
UNITS: Final = {"Pct": "%", "var": "var", "W": "W", "VA": "VA", "Wh": "Wh", "Hz": "Hz"}
# Points that describe the model itself rather than the device.
SKIPPED: Final = frozenset({"ID", "L"})

Read = Callable[[int, int], Awaitable[list[int]]]


class SunSpecError(ValueError):
    """The device has no SunSpec map, or its model chain is broken."""


@dataclass(frozen=True, slots=True)
class Model:
    """One model in the chain: its id, name, and where its body starts and how long it is."""

    id: int
    name: str
    address: int
    length: int


@dataclass(frozen=True, slots=True)
class Discovery:
    """What a SunSpec device declares: its base, models, and points ready to poll."""

    base: int
    models: tuple[Model, ...]
    points: tuple[ModbusPoint, ...]


async def _read(read: Read, address: int, count: int) -> list[int]:
    words: list[int] = []
    while count > 0:
        n = min(count, CHUNK)
        words += await read(address, n)
        address += n
        count -= n
    return words


async def find_base(read: Read) -> int:
    """The address of the `SunS` marker; SunSpecError when none of the bases has it."""
    for base in BASES:
        try:
            if tuple(await read(base, 2)) == MARKER:
                return base
        except Exception:  # an exception reply or a timeout at one base says nothing of the next
            continue
    raise SunSpecError("no SunS marker at 40000, 0 or 50000: not a SunSpec device")


async def discover(read: Read, interval_s: float = 1.0) -> Discovery:
    """Walk the model chain and describe every implemented point of every known model."""
    base = await find_base(read)
    address = base + 2
    models: list[Model] = []
    points: list[ModbusPoint] = []
    while True:
        model_id, length = await read(address, 2)
        if model_id == END_MODEL:
            break
        # A chain of over MAX_MODELS models, or an all-zero header, is not a SunSpec map.
        if len(models) > MAX_MODELS or (length == 0 and model_id == 0):
            raise SunSpecError(f"the model chain is broken at {address}")
        definition = _definition(model_id)
        name = definition["group"]["name"] if definition else f"model_{model_id}"
        models.append(Model(model_id, name, address + 2, length))
        if definition:
            body = await _read(read, address + 2, length)
            points += _points(model_id, definition["group"], address, [model_id, length, *body],
                              interval_s)  # fmt: skip
        address += 2 + length
    return Discovery(base, tuple(models), tuple(points))


def _definition(model_id: int) -> dict[str, Any] | None:
    try:
        return sunspec_models.get_model_def(model_id)
    except Exception:  # a vendor model pysunspec2 does not know: listed, not decoded
        return None


def _points(
    model_id: int, group: dict[str, Any], start: int, words: list[int], interval_s: float
) -> list[ModbusPoint]:
    """The fixed block's points (repeating groups are left out), with scale factors applied."""
    offsets: dict[str, tuple[int, dict[str, Any]]] = {}
    offset = 0
    for spec in group["points"]:
        offsets[spec["name"]] = (offset, spec)
        offset += spec.get("size", 1)
    out = []
    for name, (offset, spec) in offsets.items():
        kind = spec["type"]
        if name in SKIPPED or kind not in TYPES or offset + spec.get("size", 1) > len(words):
            continue
        raw = {
            "key": f"m{model_id}_{name}",
            "table": "holding",
            "address": start + offset,
            "data_type": TYPES[kind],
            "interval_s": interval_s if kind != "string" else max(interval_s, 3600.0),
        }
        if kind == "string":
            raw["length"] = spec["size"]
        else:
            raw["not_available"] = [NOT_IMPLEMENTED[kind]] if kind in NOT_IMPLEMENTED else []
            scale = _scale(spec.get("sf"), offsets, words)
            if scale is None:
                continue  # its scale factor is not implemented: the value cannot be read
            raw["scale"] = scale
        if spec.get("units"):
            raw["unit"] = UNITS.get(spec["units"], spec["units"])
        if spec.get("access") == "RW" and kind != "string":
            raw["writable"] = True
        point = parse_point(raw, f"model {model_id}")
        if kind == "string" or _implemented(point, words, offset):
            out.append(point)
    return out


def _scale(
    sf: Any, offsets: dict[str, tuple[int, dict[str, Any]]], words: list[int]
) -> float | None:
    if sf is None:
        return 1.0
    if isinstance(sf, int):
        return 10.0**sf
    offset, _ = offsets[sf]
    value = words[offset] - 0x10000 if words[offset] & 0x8000 else words[offset]
    if value == NOT_IMPLEMENTED["sunssf"]:
        return None
    return 10.0**value


def _implemented(point: ModbusPoint, words: list[int], offset: int) -> bool:
    return codec.decode(point, words[offset : offset + point.words]) is not None


def as_point_dicts(discovery: Discovery) -> list[dict[str, Any]]:
    """The discovered points in the shape `add_device(points=...)` and the API take."""
    return [msgspec.to_builtins(point) for point in discovery.points]


async def discover_device(transport: str, connection: dict[str, Any]) -> Discovery:
    """Connect to a device (not yet polled) and discover its SunSpec map."""
    conn = parse_connection(transport, connection)
    client = make_client(bus_key(transport, conn), conn)
    try:
        if not await client.connect():
            raise SunSpecError(f"cannot connect to the device ({transport})")

        async def read(address: int, count: int) -> list[int]:
            response = await client.read_holding_registers(
                address, count=count, device_id=conn.unit_id
            )
            if response.isError():
                raise SunSpecError(f"exception reply {response.exception_code} at {address}")
            return list(response.registers)

        return await discover(read)
    finally:
        client.close()
