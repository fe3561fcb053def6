"""The request planner: the fewest read requests that cover a unit's points.

Points of one table are sorted by address and packed greedily into blocks:
a block grows while its span stays within the request limit (125 registers
or 2,000 bits, or the device's own smaller `max_block`) and the hole before
the next point is at most `max_gap` registers. For intervals on a line this
greedy packing is optimal. Reading a hole costs two bytes per register,
while a request costs a round trip, so transports set `max_gap` by what a
round trip costs them (see `DEFAULT_GAPS`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from drivers.modbus.points import BIT_TABLES, ModbusPoint

MAX_REGISTERS: Final = 125  # the protocol's limit for function codes 3 and 4
MAX_BITS: Final = 2000  # ... and for function codes 1 and 2
# Holes bridged per transport: a TCP round trip costs ~1 ms; at 9600 baud a
# serial one costs ~15 ms, the time of about 8 registers.
DEFAULT_GAPS: Final = {"modbus_tcp": 32, "modbus_rtu": 8, "modbus_rtu_over_tcp": 8}
# Bits are cheap: 16 per register's worth of bytes on the wire.
BIT_GAP_FACTOR: Final = 16


@dataclass(frozen=True, slots=True)
class Limits:
    """What the device and transport allow in one request."""

    max_block: int | None = None  # the device's own limit, in registers (or bits)
    max_gap: int = DEFAULT_GAPS["modbus_tcp"]
    one_per_request: bool = False

    def span(self, table: str) -> int:
        """Most registers (or bits) one request of this table may cover."""
        protocol = MAX_BITS if table in BIT_TABLES else MAX_REGISTERS
        return protocol if self.max_block is None else min(protocol, self.max_block)

    def gap(self, table: str) -> int:
        """Largest hole a block may bridge in this table."""
        return self.max_gap * BIT_GAP_FACTOR if table in BIT_TABLES else self.max_gap


@dataclass(frozen=True, slots=True)
class Block:
    """One read request: a table, a start address, a count, and the points it serves."""

    table: str
    start: int
    count: int
    points: tuple[ModbusPoint, ...]

    def slice(self, point: ModbusPoint, values: list[int] | list[bool]) -> list[int] | list[bool]:
        """The part of the block's response that holds this point."""
        offset = point.address - self.start
        return values[offset : offset + point.words]


def _block(table: str, points: list[ModbusPoint]) -> Block:
    start = min(p.address for p in points)
    end = max(p.end for p in points)
    return Block(table, start, end - start, tuple(points))


def plan(points: Iterable[ModbusPoint], limits: Limits = Limits()) -> list[Block]:
    """Blocks covering every point, fewest first by table then address."""
    by_table: dict[str, list[ModbusPoint]] = {}
    for point in points:
        by_table.setdefault(point.table, []).append(point)
    blocks: list[Block] = []
    for table in sorted(by_table):
        ordered = sorted(by_table[table], key=lambda p: (p.address, p.end))
        if limits.one_per_request:
            blocks += [_block(table, [p]) for p in ordered]
            continue
        span, gap = limits.span(table), limits.gap(table)
        current: list[ModbusPoint] = []
        start = end = 0
        for point in ordered:
            if current and point.address - end <= gap and max(end, point.end) - start <= span:
                current.append(point)
                end = max(end, point.end)
                continue
            if current:
                blocks.append(_block(table, current))
            current, start, end = [point], point.address, point.end
        if current:
            blocks.append(_block(table, current))
    return blocks


def split(block: Block) -> list[Block]:
    """Two blocks sharing the points, cut at the widest hole (else the middle), without bridging."""
    points = sorted(block.points, key=lambda p: (p.address, p.end))
    if len(points) < 2:
        return [block]
    cut, widest, reach = len(points) // 2, -1, points[0].end
    for i in range(1, len(points)):
        hole = points[i].address - reach
        if hole > widest:
            cut, widest = i, hole
        reach = max(reach, points[i].end)
    return [_block(block.table, points[:cut]), _block(block.table, points[cut:])]
