"""The request planner: the fewest requests within the protocol's and the device's limits."""

from __future__ import annotations

import functools

from hypothesis import given
from hypothesis import strategies as st

from drivers.modbus.planner import Block, Limits, plan, split
from drivers.modbus.points import ModbusPoint, parse_point

SIZES = {"uint16": 1, "float32": 2, "float64": 4}


def p(key: str, address: int, data_type: str = "uint16", table: str = "holding") -> ModbusPoint:
    if table in ("coil", "discrete"):
        data_type = "bool"
    return parse_point({"key": key, "table": table, "address": address, "data_type": data_type})


def valid(block: Block, limits: Limits) -> bool:
    span = limits.span(block.table)
    ordered = sorted(block.points, key=lambda q: q.address)
    reach = ordered[0].end
    for q in ordered[1:]:
        if q.address - reach > limits.gap(block.table):
            return False
        reach = max(reach, q.end)
    return block.count <= span and block.start == ordered[0].address


def minimum(points: list[ModbusPoint], limits: Limits) -> int:
    """Fewest blocks, by dynamic programming over every split of the sorted points."""
    ordered = sorted(points, key=lambda q: (q.address, q.end))

    @functools.cache
    def best(i: int) -> int:
        if i == len(ordered):
            return 0
        result = len(ordered)
        for j in range(i + 1, len(ordered) + 1):
            group = ordered[i:j]
            start, end = group[0].address, max(q.end for q in group)
            block = Block(group[0].table, start, end - start, tuple(group))
            if not valid(block, limits):
                break
            result = min(result, 1 + best(j))
        return result

    return best(0)


point_sets = st.lists(
    st.tuples(st.integers(0, 600), st.sampled_from(list(SIZES))), min_size=1, max_size=40
).map(lambda items: [p(f"k{i}", a, t) for i, (a, t) in enumerate(items)])


@given(points=point_sets, max_block=st.sampled_from([None, 10, 40, 125]), gap=st.integers(0, 40))
def test_the_plan_covers_every_point_within_limits_in_the_fewest_requests(points, max_block, gap):
    limits = Limits(max_block=max_block, max_gap=gap)
    blocks = plan(points, limits)
    covered = [q for b in blocks for q in b.points]
    assert sorted(q.key for q in covered) == sorted(q.key for q in points)
    assert all(valid(b, limits) for b in blocks)
    assert len(blocks) == minimum(points, limits)


def test_adjacent_registers_of_a_meter_become_one_request():
    points = [p(f"v{i}", i * 2, "float32") for i in range(60)]  # 120 registers
    (block,) = plan(points)
    assert (block.start, block.count) == (0, 120)


def test_the_protocol_limits_requests_to_125_registers_and_2000_bits():
    registers = [p(f"r{i}", i) for i in range(300)]
    assert [b.count for b in plan(registers)] == [125, 125, 50]
    coils = [p(f"c{i}", i, table="coil") for i in range(4500)]
    assert [b.count for b in plan(coils)] == [2000, 2000, 500]


def test_a_device_limit_and_one_point_per_request_are_honoured():
    points = [p(f"r{i}", i) for i in range(100)]
    assert all(b.count <= 40 for b in plan(points, Limits(max_block=40)))
    assert len(plan(points, Limits(max_block=40))) == 3
    assert len(plan(points, Limits(one_per_request=True))) == 100


def test_tables_are_never_mixed():
    points = [p("h", 0), p("i", 1, table="input"), p("c", 0, table="coil")]
    assert sorted(b.table for b in plan(points)) == ["coil", "holding", "input"]


def test_holes_wider_than_the_gap_are_not_bridged():
    points = [p("a", 0), p("b", 10), p("c", 100)]
    assert [(b.start, b.count) for b in plan(points, Limits(max_gap=16))] == [(0, 11), (100, 1)]


def test_split_cuts_at_the_widest_hole_and_never_bridges_it():
    (block,) = plan([p("a", 0), p("b", 1), p("c", 30), p("d", 31)], Limits(max_gap=40))
    left, right = split(block)
    assert [(b.start, b.count) for b in (left, right)] == [(0, 2), (30, 2)]
    (single,) = plan([p("a", 0)])
    assert split(single) == [single]
