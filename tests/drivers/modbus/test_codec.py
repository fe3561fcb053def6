"""The codec, table-tested for every type and order against an independent struct encoding."""

from __future__ import annotations

import math
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.modbus import codec
from drivers.modbus.points import ModbusPoint, PointError, parse_point

FORMATS = {
    "int16": "h", "uint16": "H", "int32": "i", "uint32": "I",
    "int64": "q", "uint64": "Q", "float32": "f", "float64": "d",
}  # fmt: skip
SAMPLES = {
    "int16": [0, 1, -1, 12345, -32768, 32767],
    "uint16": [0, 1, 0xABCD, 65535],
    "int32": [0, -1, 0x12345678, -(2**31), 2**31 - 1],
    "uint32": [0, 0x89ABCDEF, 2**32 - 1],
    "int64": [0, -1, 0x0123456789ABCDEF, -(2**63), 2**63 - 1],
    "uint64": [0, 0xFEDCBA9876543210, 2**64 - 1],
    "float32": [0.0, 1.5, -230.25, 3.4028234663852886e38, 1e-30],
    "float64": [0.0, math.pi, -1e300, 2.5e-310],
}
ORDERS = ("ABCD", "BADC", "CDAB", "DCBA")


def _pairs_swapped(raw: bytes) -> bytes:
    return bytes(b for i in range(0, len(raw), 2) for b in (raw[i + 1], raw[i]))


def reference_words(data_type: str, order: str, value) -> list[int]:
    """Registers built with struct's little/big-endian packing, not with the codec's logic."""
    fmt = FORMATS[data_type]
    if order == "ABCD":
        raw = struct.pack(">" + fmt, value)
    elif order == "DCBA":
        raw = struct.pack("<" + fmt, value)
    elif order == "BADC":
        raw = _pairs_swapped(struct.pack(">" + fmt, value))
    else:  # CDAB: little-endian register order, big-endian bytes inside each register
        raw = _pairs_swapped(struct.pack("<" + fmt, value))
    if len(raw) == 2 and order in ("CDAB",):
        raw = struct.pack(">" + fmt, value)  # one register: no words to swap
    if len(raw) == 2 and order == "DCBA":
        raw = _pairs_swapped(struct.pack(">" + fmt, value))
    return [int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw), 2)]


def point(**fields) -> ModbusPoint:
    return parse_point({"key": "p", "table": "holding", "address": 0, **fields})


CASES = [(t, o, v) for t, values in SAMPLES.items() for o in ORDERS for v in values]


@pytest.mark.parametrize(("data_type", "order", "value"), CASES)
def test_every_type_and_order_matches_struct(data_type, order, value):
    p = point(data_type=data_type, order=order)
    words = reference_words(data_type, order, value)
    assert len(words) == p.words
    decoded = codec.decode(p, words)
    expected = struct.unpack(
        ">" + FORMATS[data_type], struct.pack(">" + FORMATS[data_type], value)
    )[0]
    assert decoded == expected
    assert codec.encode(p, value) == words


def test_the_named_orders_put_bytes_where_the_letters_say():
    value_bytes = bytes.fromhex("0A0B0C0D")  # A=0A B=0B C=0C D=0D
    value = struct.unpack(">I", value_bytes)[0]
    expected = {
        "ABCD": [0x0A0B, 0x0C0D],
        "BADC": [0x0B0A, 0x0D0C],
        "CDAB": [0x0C0D, 0x0A0B],
        "DCBA": [0x0D0C, 0x0B0A],
    }
    for order, words in expected.items():
        assert codec.encode(point(data_type="uint32", order=order), value) == words


@pytest.mark.parametrize("order", ORDERS)
def test_strings_keep_register_order_and_swap_bytes_under_badc_and_dcba(order):
    p = point(data_type="string", length=4, order=order)
    raw = b"SDM630\0\0"
    swapped = order in ("BADC", "DCBA")
    words = [
        int.from_bytes(raw[i + 1 : i + 2] + raw[i : i + 1] if swapped else raw[i : i + 2], "big")
        for i in range(0, 8, 2)
    ]
    assert codec.decode(p, words) == "SDM630"
    assert codec.encode(p, "SDM630") == words


@pytest.mark.parametrize(
    ("bit", "word", "expected"), [(0, 0x0001, 1.0), (15, 0x8000, 1.0), (3, 0xFFF7, 0.0)]
)
def test_a_bit_of_a_register(bit, word, expected):
    assert codec.decode(point(data_type="bit", bit=bit), [word]) == expected


def test_bit_numbering_follows_the_byte_swap():
    assert codec.decode(point(data_type="bit", bit=0, order="BADC"), [0x0100]) == 1.0


def test_coils_and_flags_decode_to_zero_or_one():
    assert codec.decode(point(table="coil", data_type="bool"), [True]) == 1.0
    assert codec.decode(point(table="discrete", data_type="bool"), [False]) == 0.0
    assert codec.decode(point(data_type="bool"), [7]) == 1.0


def test_scale_and_offset_apply_both_ways():
    p = point(data_type="int16", scale=0.1, offset=-40)
    assert codec.decode(p, [650]) == pytest.approx(25.0)
    assert codec.encode(p, 25.0) == [650]


def test_sentinels_and_nan_decode_to_no_value():
    p = point(data_type="uint16", not_available=[65535])
    assert codec.decode(p, [65535]) is None
    assert codec.decode(p, [65534]) == 65534
    nan = struct.unpack(">HH", struct.pack(">f", math.nan))
    assert codec.decode(point(data_type="float32"), list(nan)) is None
    f32_na = point(data_type="uint32", not_available=[0xFFC00000])
    assert codec.decode(f32_na, [0xFFC0, 0x0000]) is None


@pytest.mark.parametrize(
    ("fields", "value", "message"),
    [
        ({"data_type": "int16"}, 40000, "out of range"),
        ({"data_type": "uint16"}, -1, "out of range"),
        ({"data_type": "int16", "scale": 0.1}, 1.05, "not a multiple"),
        ({"data_type": "float32"}, 1e39, "out of range"),
        ({"data_type": "float32"}, math.inf, "finite"),
        ({"data_type": "uint16", "min": 10, "max": 20}, 21, "above"),
        ({"data_type": "uint16", "min": 10, "max": 20}, 9, "below"),
        ({"data_type": "string", "length": 2}, "too long", "at most 4"),
        ({"data_type": "bit", "bit": 2}, 1, "cannot be written"),
    ],
)
def test_values_that_cannot_be_written_are_refused(fields, value, message):
    with pytest.raises(ValueError, match=message):
        codec.encode(point(**fields), value)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"data_type": "float33"}, "p"),
        ({"table": "coil", "data_type": "uint16"}, "one bit"),
        ({"table": "input", "writable": True}, "read-only"),
        ({"data_type": "bit"}, "needs `bit`"),
        ({"address": 65535, "data_type": "float32"}, "past the last register"),
        ({"scale": 0}, "non-zero"),
        ({"colour": "red"}, "unknown field"),
    ],
)
def test_bad_point_definitions_name_the_point(fields, message):
    with pytest.raises(PointError) as caught:
        point(**fields)
    assert "'p'" in str(caught.value)
    assert message.replace("`", "") in str(caught.value)


@given(
    data_type=st.sampled_from(["int16", "uint16", "int32", "uint32", "int64", "uint64"]),
    order=st.sampled_from(ORDERS),
    data=st.data(),
)
def test_integers_round_trip(data_type, order, data):
    bits = {"16": 16, "32": 32, "64": 64}[data_type[-2:]]
    low, high = (
        (0, 2**bits - 1) if data_type.startswith("u") else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    )
    value = data.draw(st.integers(low, high))
    p = point(data_type=data_type, order=order)
    assert codec.decode(p, codec.encode(p, value)) == value


@given(
    order=st.sampled_from(ORDERS), value=st.floats(allow_nan=False, allow_infinity=False, width=32)
)
def test_float32_round_trips(order, value):
    p = point(data_type="float32", order=order)
    assert codec.decode(p, codec.encode(p, value)) == value
