"""SunSpec discovery against a real pymodbus server holding a SunSpec register map."""

from __future__ import annotations

import contextlib
import struct

import pytest
from pymodbus.datastore import ModbusDeviceContext, ModbusSequentialDataBlock, ModbusServerContext
from pymodbus.server import ModbusTcpServer

from drivers.modbus import codec
from drivers.modbus.sunspec import SunSpecError, discover_device

MODEL_1_LENGTH = 66
MODEL_103_LENGTH = 50


def _string(text: str, registers: int) -> list[int]:
    raw = text.encode().ljust(registers * 2, b"\0")
    return list(struct.unpack(f">{registers}H", raw))


def _s16(value: int) -> int:
    return value & 0xFFFF


def sunspec_image(base: int) -> dict[int, int]:
    """A three-phase inverter: common model 1, inverter model 103, end marker."""
    regs: dict[int, int] = {}

    def put(address: int, words: list[int]) -> None:
        for i, w in enumerate(words):
            regs[address + i] = w

    put(base, [0x5375, 0x6E53])
    common = [1, MODEL_1_LENGTH, *_string("Fronius", 16), *_string("Symo 10.0-3-M", 16)]
    common += _string("opt", 8) + _string("1.2.3", 8) + _string("SN123456", 16) + [1, 0x8000]
    put(base + 2, common)
    inverter = [0xFFFF] * (MODEL_103_LENGTH + 2)
    inverter[0:2] = [103, MODEL_103_LENGTH]
    fields = {  # offsets within the model, counted from its ID register
        "A": (2, 1234), "AphA": (3, 411), "A_SF": (6, _s16(-2)),
        "PhVphA": (10, 2301), "V_SF": (13, _s16(-1)),
        "W": (14, 8150), "W_SF": (15, 0),
        "Hz": (16, 5001), "Hz_SF": (17, _s16(-2)),
        "WH_hi": (24, 0x0001), "WH_lo": (25, 0x86A0), "WH_SF": (26, 0),
    }  # fmt: skip
    for offset, value in fields.values():
        inverter[offset] = value
    end_of_common = base + 2 + 2 + MODEL_1_LENGTH
    put(end_of_common, inverter)
    put(end_of_common + 2 + MODEL_103_LENGTH, [0xFFFF, 0])
    return regs


@contextlib.asynccontextmanager
async def sunspec_server(base: int):
    image = sunspec_image(base)
    size = max(image) + 2
    words = [image.get(a, 0) for a in range(size)]
    # pymodbus blocks are addressed one above the protocol address.
    device = ModbusDeviceContext(hr=ModbusSequentialDataBlock(1, words))
    context = ModbusServerContext(devices={1: device}, single=False)
    server = ModbusTcpServer(context, address=("127.0.0.1", 0))
    await server.serve_forever(background=True)
    port = server.transport.sockets[0].getsockname()[1]
    try:
        yield port
    finally:
        await server.shutdown()


@pytest.mark.parametrize("base", [40000, 0, 50000])
def test_discovery_finds_the_marker_walks_the_models_and_scales_the_points(run, base):
    async def scenario():
        async with sunspec_server(base) as port:
            return await discover_device("modbus_tcp", {"host": "127.0.0.1", "port": port})

    found = run(scenario())
    assert found.base == base
    assert [(m.id, m.name) for m in found.models] == [(1, "common"), (103, "inverter_three_phase")]
    points = {p.key: p for p in found.points}
    model_103 = base + 2 + 2 + MODEL_1_LENGTH
    assert points["m103_W"].address == model_103 + 14
    assert points["m103_A"].scale == pytest.approx(0.01)
    assert points["m103_PhVphA"].unit == "V"
    assert points["m103_Hz"].scale == pytest.approx(0.01)
    assert points["m103_WH"].data_type == "uint32"
    assert points["m1_Mn"].data_type == "string"
    assert "m103_AphB" not in points, "a not-implemented point (0xFFFF) was offered"
    image = sunspec_image(base)

    def value(key: str):
        point = points[key]
        return codec.decode(point, [image[point.address + i] for i in range(point.words)])

    assert value("m103_A") == pytest.approx(12.34)
    assert value("m103_PhVphA") == pytest.approx(230.1)
    assert value("m103_Hz") == pytest.approx(50.01)
    assert value("m103_WH") == 100_000
    assert value("m1_Md") == "Symo 10.0-3-M"


def test_a_device_without_sunspec_is_reported_plainly(run):
    async def scenario():
        device = ModbusDeviceContext(hr=ModbusSequentialDataBlock(1, [0] * 10))
        server = ModbusTcpServer(
            ModbusServerContext(devices={1: device}, single=False), address=("127.0.0.1", 0)
        )
        await server.serve_forever(background=True)
        port = server.transport.sockets[0].getsockname()[1]
        try:
            with pytest.raises(SunSpecError, match="not a SunSpec device"):
                await discover_device(
                    "modbus_tcp", {"host": "127.0.0.1", "port": port, "timeout_s": 0.5}
                )
        finally:
            await server.shutdown()

    run(scenario())
