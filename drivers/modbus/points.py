"""A Modbus point as data: where it lives on the device and how its registers become a value.

Points come from profile files and from a device's `points` in the store; both
are plain mappings validated here into frozen `ModbusPoint`s, so a typo in a
profile is a clear error naming the point and the field.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Final, Literal

import msgspec

Table = Literal["coil", "discrete", "holding", "input"]
DataType = Literal[
    "bool", "int16", "uint16", "int32", "uint32", "int64", "uint64",
    "float32", "float64", "string", "bit",
]  # fmt: skip
Order = Literal["ABCD", "BADC", "CDAB", "DCBA"]

BIT_TABLES: Final = frozenset({"coil", "discrete"})
WRITABLE_TABLES: Final = frozenset({"coil", "holding"})
# Registers each fixed-size type spans; strings span `length` registers.
WORDS: Final = {
    "bool": 1, "int16": 1, "uint16": 1, "bit": 1,
    "int32": 2, "uint32": 2, "float32": 2,
    "int64": 4, "uint64": 4, "float64": 4,
}  # fmt: skip
# Highest register address plus one (the protocol addresses 0..65535).
ADDRESS_SPACE: Final = 65_536


class ModbusPoint(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One tag: table, address and decoding, plus how often and when to report it."""

    key: Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")]
    table: Table
    address: Annotated[int, msgspec.Meta(ge=0, lt=ADDRESS_SPACE)]
    data_type: DataType = "uint16"
    order: Order = "ABCD"
    length: Annotated[int, msgspec.Meta(ge=1, le=125)] = 1
    bit: Annotated[int, msgspec.Meta(ge=0, le=15)] | None = None
    scale: float = 1.0
    offset: float = 0.0
    unit: str | None = None
    interval_s: Annotated[float, msgspec.Meta(gt=0, le=86_400)] = 1.0
    deadband: Annotated[float, msgspec.Meta(ge=0)] | None = None
    not_available: tuple[int | float, ...] = ()  # ints stay exact: 64-bit sentinels
    writable: bool = False
    min: float | None = None
    max: float | None = None

    def __post_init__(self) -> None:
        if self.table in BIT_TABLES and self.data_type != "bool":
            raise ValueError(f"{self.table} points hold one bit: data_type must be bool")
        if self.data_type == "bit" and self.bit is None:
            raise ValueError("data_type bit needs `bit` (0-15)")
        if self.data_type != "bit" and self.bit is not None:
            raise ValueError("`bit` applies only to data_type bit")
        if self.writable and self.table not in WRITABLE_TABLES:
            raise ValueError(f"{self.table} points are read-only")
        if self.scale == 0 or not math.isfinite(self.scale):
            raise ValueError("scale must be a finite, non-zero number")
        if self.address + self.words > ADDRESS_SPACE:
            raise ValueError("the point runs past the last register (65535)")

    @property
    def words(self) -> int:
        """Registers (or bits, for coil and discrete tables) the point spans."""
        if self.table in BIT_TABLES:
            return 1
        return self.length if self.data_type == "string" else WORDS[self.data_type]

    @property
    def end(self) -> int:
        """One past the point's last register or bit."""
        return self.address + self.words


class PointError(ValueError):
    """A point definition is invalid; the message names the point and the field."""


def parse_point(raw: dict[str, Any], where: str = "point") -> ModbusPoint:
    """Validate a mapping (snake_case keys, as in profiles and API bodies) into a ModbusPoint."""
    name = raw.get("key", "?") if isinstance(raw, dict) else "?"
    try:
        return msgspec.convert(raw, ModbusPoint)
    except (msgspec.ValidationError, ValueError) as error:
        raise PointError(f"{where} {name!r}: {_lower(str(error))}") from None


def _lower(message: str) -> str:
    message = message.replace("`", "")
    return message[:1].lower() + message[1:]
