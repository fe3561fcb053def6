"""Device profiles: register maps as TOML data files in `drivers/modbus/profiles/`.

A profile file names the device and lists its points; `[defaults]` fills
fields every point shares (table, data type, order, interval). Limits the
device imposes on requests (`max_block`, `one_per_request`) live here too,
since they belong to the model, not to one installation.
"""

from __future__ import annotations

import functools
import tomllib
from importlib import resources
from typing import Annotated, Any, Final, get_args

import msgspec

from drivers.modbus.points import WORDS, ModbusPoint, Order, PointError, parse_point


class ProfileError(ValueError):
    """A profile file is invalid or unknown; the message names the file and the field."""


class Profile(msgspec.Struct, frozen=True, kw_only=True):
    """A device model's register map and request limits."""

    id: str
    name: str
    manufacturer: str
    description: str = ""
    max_block: Annotated[int, msgspec.Meta(ge=1, le=125)] | None = None
    one_per_request: bool = False
    points: tuple[ModbusPoint, ...] = ()

    def point(self, key: str) -> ModbusPoint:
        """The profile's point with this key."""
        for point in self.points:
            if point.key == key:
                return point
        raise KeyError(key)


_HEADER_FIELDS = ("name", "manufacturer", "description", "max_block", "one_per_request")


def parse_profile(profile_id: str, data: dict[str, Any], where: str) -> Profile:
    """A profile from a decoded TOML document."""
    unknown = set(data) - {*_HEADER_FIELDS, "defaults", "points"}
    if unknown:
        raise ProfileError(f"{where}: unknown field {sorted(unknown)[0]}")
    defaults = data.get("defaults", {})
    if not isinstance(defaults, dict):
        raise ProfileError(f"{where}: defaults must be a table")
    fields = {f.name for f in msgspec.structs.fields(ModbusPoint)}
    stray = sorted(set(defaults) - fields)
    if stray:
        raise ProfileError(f"{where}: unknown field defaults.{stray[0]}")
    raw_points = data.get("points", [])
    if not isinstance(raw_points, list) or not all(isinstance(p, dict) for p in raw_points):
        raise ProfileError(f"{where}: points must be a list of tables")
    if not raw_points:
        raise ProfileError(f"{where}: the profile has no points")
    points = []
    seen = set()
    for n, raw in enumerate(raw_points, 1):
        try:
            point = parse_point({**defaults, **raw}, f"{where}: point {n}")
        except PointError as error:
            raise ProfileError(str(error)) from None
        if point.key in seen:
            raise ProfileError(f"{where}: point {point.key!r} is defined twice")
        seen.add(point.key)
        points.append(point)
    header = {k: data[k] for k in _HEADER_FIELDS if k in data}
    try:
        profile = msgspec.convert({"id": profile_id, **header}, Profile)
    except msgspec.ValidationError as error:
        raise ProfileError(f"{where}: {error}") from None
    return msgspec.structs.replace(profile, points=tuple(points))


def available() -> list[str]:
    """Ids of the built-in profiles."""
    folder = resources.files("drivers.modbus") / "profiles"
    return sorted(
        p.name.removesuffix(".toml") for p in folder.iterdir() if p.name.endswith(".toml")
    )


@functools.cache
def load(profile_id: str) -> Profile:
    """A built-in profile by id (the file name without `.toml`)."""
    if profile_id not in available():
        raise ProfileError(f"unknown profile {profile_id!r}; known: {', '.join(available())}")
    resource = resources.files("drivers.modbus") / "profiles" / f"{profile_id}.toml"
    try:
        data = tomllib.loads(resource.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise ProfileError(f"{resource.name}: not valid TOML: {error}") from None
    return parse_profile(profile_id, data, resource.name)


# What each data type decodes, as `/sensor-profiles` describes it.
_DECODERS: Final = {
    "bool": "one bit: a coil, a discrete input, or a register read as 0 / non-zero",
    "bit": "one bit (0-15, `bit`) of a holding or input register",
    "int16": "signed 16-bit integer",
    "uint16": "unsigned 16-bit integer",
    "int32": "signed 32-bit integer over 2 registers",
    "uint32": "unsigned 32-bit integer over 2 registers",
    "int64": "signed 64-bit integer over 4 registers",
    "uint64": "unsigned 64-bit integer over 4 registers",
    "float32": "IEEE 754 single precision over 2 registers",
    "float64": "IEEE 754 double precision over 4 registers",
    "string": "ASCII text over `length` registers (kept as a device attribute)",
}
# Point fields that tune a decoder rather than locate the point.
_DECODER_PARAMETERS: Final = (
    "order", "scale", "offset", "unit", "not_available", "deadband", "min", "max", "writable",
)  # fmt: skip


def sensor_profiles() -> list[dict[str, Any]]:
    """The decoders a Modbus point may use (its `data_type`), as plain data for the API."""
    return [
        {
            "id": f"modbus.{data_type}",
            "protocol": "modbus",
            "data_type": data_type,
            "description": description,
            "registers": WORDS.get(data_type),  # None: strings span `length` registers
            "orders": list(get_args(Order)) if WORDS.get(data_type, 2) > 1 else ["ABCD"],
            "parameters": [p for p in _DECODER_PARAMETERS if p != "order" or data_type != "bit"],
        }
        for data_type, description in _DECODERS.items()
    ]


def as_data() -> list[dict[str, Any]]:
    """Every built-in profile as plain data, as the API shows it."""
    return [{**msgspec.to_builtins(load(pid)), "protocol": "modbus"} for pid in available()]
