"""A unit's register image: the four Modbus tables as the device holds them.

Values go in through `codec.encode` and come out through `codec.decode`, so what
a client decodes from the registers is exactly what the image reports. Each table
ends after the profile's last point in it; reads past that end are the device's
to refuse.
"""

from __future__ import annotations

import math
import struct
from array import array
from collections.abc import Iterable, Sequence
from typing import Final

from drivers.modbus import codec
from drivers.modbus.points import BIT_TABLES, WORDS, ModbusPoint

TABLES: Final = ("coil", "discrete", "holding", "input")
# Integer types, whose registers carry whole multiples of the point's scale.
_INTEGERS: Final = frozenset({"int16", "uint16", "int32", "uint32", "int64", "uint64"})


class RegisterImage:
    """The coil, discrete, holding and input tables of one unit, sized to its points."""

    def __init__(self, points: Iterable[ModbusPoint]) -> None:
        self.points = {point.key: point for point in points}
        sizes = dict.fromkeys(TABLES, 0)
        for point in self.points.values():
            sizes[point.table] = max(sizes[point.table], point.end)
        self._tables = {table: array("H", bytes(2 * size)) for table, size in sizes.items()}
        self._writable = {table: bytearray(size) for table, size in sizes.items()}
        for point in self.points.values():
            if point.writable:
                self._writable[point.table][point.address : point.end] = b"\1" * point.words

    def covers(self, table: str, address: int, count: int) -> bool:
        """Whether all `count` addresses from `address` exist in the table."""
        return count >= 1 and address >= 0 and address + count <= len(self._tables[table])

    def writable(self, table: str, address: int, count: int) -> bool:
        """Whether every address in the range belongs to a writable point."""
        return all(self._writable[table][address : address + count])

    def read(self, table: str, address: int, count: int) -> list[int]:
        """The raw words (0 or 1 for bit tables) at these addresses."""
        return self._tables[table][address : address + count].tolist()

    def write(self, table: str, address: int, words: Sequence[int]) -> None:
        """Store raw words (0 or 1 for bit tables) from `address` on."""
        self._tables[table][address : address + len(words)] = array("H", words)

    def get(self, point: ModbusPoint) -> float | str | None:
        """The point's value as a client decodes it from the registers."""
        return codec.decode(point, self.read(point.table, point.address, point.words))

    def put(self, point: ModbusPoint, value: float | str | bool) -> None:
        """Encode the value into the point's registers; ValueError if the point cannot carry it."""
        if point.data_type == "bit":
            self._put_bit(point, bool(value))
            return
        words = codec.encode(point, value)
        if point.table in BIT_TABLES:
            words = [1 if words[0] else 0]
        self.write(point.table, point.address, words)

    def _put_bit(self, point: ModbusPoint, on: bool) -> None:
        # codec.encode will not write one bit alone; the rest of the register stays as it is.
        word = self._tables[point.table][point.address]
        swapped = point.order in ("BADC", "DCBA")
        if swapped:
            word = ((word & 0xFF) << 8) | (word >> 8)
        mask = 1 << (point.bit or 0)
        word = word | mask if on else word & ~mask
        if swapped:
            word = ((word & 0xFF) << 8) | (word >> 8)
        self._tables[point.table][point.address] = word


def representable(point: ModbusPoint, value: float) -> float:
    """The nearest value to `value` that the point's registers carry and that is no sentinel."""
    low, high = _bounds(point)
    value = min(max(value, low), high)
    if point.data_type in ("bool", "bit"):
        return 1.0 if value >= 0.5 else 0.0
    if point.data_type not in _INTEGERS:
        raw = (value - point.offset) / point.scale
        if point.data_type == "float32":
            raw = struct.unpack(">f", struct.pack(">f", raw))[0]
        if raw in point.not_available:
            raw += 1.0
        return raw * point.scale + point.offset
    raw_low, raw_high = _int_range(point.data_type)
    raw = min(max(round((value - point.offset) / point.scale), raw_low), raw_high)
    # Sentinels sit at the ends of the range, so stepping towards the middle leaves them.
    step = -1 if raw > (raw_low + raw_high) / 2 else 1
    while raw in point.not_available:
        raw += step
    number = raw * point.scale + point.offset
    if point.min is not None and number < point.min:
        number += abs(point.scale)
    if point.max is not None and number > point.max:
        number -= abs(point.scale)
    return number


def _int_range(data_type: str) -> tuple[int, int]:
    bits = 16 * WORDS[data_type]
    if data_type.startswith("int"):
        return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    return 0, 2**bits - 1


def _bounds(point: ModbusPoint) -> tuple[float, float]:
    """The engineering range the point's type, scale, offset and limits allow."""
    low, high = -math.inf, math.inf
    if point.data_type in _INTEGERS:
        ends = [r * point.scale + point.offset for r in _int_range(point.data_type)]
        low, high = min(ends), max(ends)
    if point.min is not None:
        low = max(low, point.min)
    if point.max is not None:
        high = min(high, point.max)
    return low, high
