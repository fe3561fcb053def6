"""Registers to values and back: pure functions over a point's type, order, scale and offset.

Byte order names follow the industry's letters for a 32-bit value whose
big-endian bytes are A B C D: `ABCD` sends them as registers [AB, CD];
`BADC` swaps the bytes inside each register; `CDAB` reverses the register
order; `DCBA` does both. 64-bit values extend this to four registers;
16-bit values only know the byte swap (BADC and DCBA). Strings keep their
register order and swap bytes inside each register under BADC and DCBA.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from typing import Final

from drivers.modbus.points import ModbusPoint

_FORMATS: Final = {
    "int16": ">h", "uint16": ">H", "int32": ">i", "uint32": ">I", "int64": ">q",
    "uint64": ">Q", "float32": ">f", "float64": ">d",
}  # fmt: skip
_INT_RANGES: Final = {
    "int16": (-(2**15), 2**15 - 1), "uint16": (0, 2**16 - 1),
    "int32": (-(2**31), 2**31 - 1), "uint32": (0, 2**32 - 1),
    "int64": (-(2**63), 2**63 - 1), "uint64": (0, 2**64 - 1),
}  # fmt: skip
_FLOAT32_MAX: Final = 3.4028234663852886e38


def _swap_bytes(order: str) -> bool:
    return order in ("BADC", "DCBA")


def _swap_words(order: str, data_type: str) -> bool:
    return order in ("CDAB", "DCBA") and data_type != "string"


def words_to_bytes(words: Sequence[int], order: str, data_type: str) -> bytes:
    """Registers as the big-endian bytes of the value they carry."""
    ordered = list(reversed(words)) if _swap_words(order, data_type) else list(words)
    raw = b"".join(w.to_bytes(2, "big") for w in ordered)
    if _swap_bytes(order):
        raw = b"".join(raw[i + 1 : i + 2] + raw[i : i + 1] for i in range(0, len(raw), 2))
    return raw


def bytes_to_words(raw: bytes, order: str, data_type: str) -> list[int]:
    """The registers that carry these big-endian bytes in the given order."""
    if _swap_bytes(order):
        raw = b"".join(raw[i + 1 : i + 2] + raw[i : i + 1] for i in range(0, len(raw), 2))
    words = [int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw), 2)]
    return list(reversed(words)) if _swap_words(order, data_type) else words


def raw_value(point: ModbusPoint, words: Sequence[int]) -> float | int | str | bool:
    """The value the registers carry, before scale and offset."""
    if len(words) != point.words:
        raise ValueError(f"{point.key}: expected {point.words} registers, got {len(words)}")
    if point.data_type == "bool":  # a coil or discrete input, or a register read as a flag
        return bool(words[0])
    if point.data_type == "bit":
        word = words[0]
        if _swap_bytes(point.order):
            word = ((word & 0xFF) << 8) | (word >> 8)
        return bool((word >> (point.bit or 0)) & 1)
    raw = words_to_bytes(words, point.order, point.data_type)
    if point.data_type == "string":
        return raw.split(b"\0", 1)[0].decode("latin-1").rstrip()
    return struct.unpack(_FORMATS[point.data_type], raw)[0]


def decode(point: ModbusPoint, words: Sequence[int]) -> float | int | str | None:
    """The point's value from its registers; None for a "not available" sentinel or NaN."""
    raw = raw_value(point, words)
    if isinstance(raw, str):
        return raw
    if isinstance(raw, bool):
        return 1.0 if raw else 0.0
    if raw in point.not_available or (isinstance(raw, float) and not math.isfinite(raw)):
        return None
    if point.scale == 1 and point.offset == 0:
        return raw  # exact: a 64-bit counter keeps every digit until it is stored
    return raw * point.scale + point.offset


def encode(point: ModbusPoint, value: float | str | bool) -> list[int]:
    """The registers that make a holding point read back as `value`; ValueError if it cannot."""
    if point.data_type == "string":
        if not isinstance(value, str):
            raise ValueError(f"{point.key} is a string point")
        data = value.encode("latin-1", errors="strict")
        if len(data) > point.length * 2:
            raise ValueError(f"{point.key} holds at most {point.length * 2} characters")
        return bytes_to_words(data.ljust(point.length * 2, b"\0"), point.order, "string")
    if isinstance(value, str):
        raise ValueError(f"{point.key} takes a number")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{point.key} takes a finite number")
    _check_limits(point, number)
    if point.data_type == "bool":
        return [1 if number else 0]
    raw = (number - point.offset) / point.scale
    if point.data_type in ("float32", "float64"):
        if point.data_type == "float32" and abs(raw) > _FLOAT32_MAX:
            raise ValueError(f"{value} is out of range for {point.key} (float32)")
        packed = struct.pack(_FORMATS[point.data_type], raw)
        return bytes_to_words(packed, point.order, point.data_type)
    if point.data_type == "bit":
        raise ValueError(f"{point.key} is one bit of a register and cannot be written alone")
    if isinstance(value, int) and point.scale == 1 and point.offset == 0:
        integer = value  # exact: floats lose digits of 64-bit values
    else:
        integer = round(raw)
        if not math.isclose(integer, raw, abs_tol=1e-9):
            raise ValueError(f"{value} is not a multiple of {point.key}'s scale {point.scale}")
    low, high = _INT_RANGES[point.data_type]
    if not low <= integer <= high:
        raise ValueError(f"{value} is out of range for {point.key} ({point.data_type})")
    packed = struct.pack(_FORMATS[point.data_type], integer)
    return bytes_to_words(packed, point.order, point.data_type)


def _check_limits(point: ModbusPoint, number: float) -> None:
    if point.min is not None and number < point.min:
        raise ValueError(f"{number:g} is below {point.key}'s minimum {point.min:g}")
    if point.max is not None and number > point.max:
        raise ValueError(f"{number:g} is above {point.key}'s maximum {point.max:g}")
