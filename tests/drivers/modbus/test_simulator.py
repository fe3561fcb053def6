"""The Modbus simulator against real pymodbus clients: values, ticking, faults, framings, CLI."""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ModbusIOException
from pymodbus.framer import FramerType

from drivers.modbus import codec, profiles
from drivers.modbus.points import BIT_TABLES, ModbusPoint
from drivers.modbus.simulator import Faults, Simulator, UnitSpec

ROOT = Path(__file__).resolve().parents[3]
LOOPBACK = "127.0.0.1"
ENERGY_UNITS = {"kwh", "kvarh", "wh", "varh", "mwh"}


@contextlib.asynccontextmanager
async def serving(sim: Simulator, framer: str = "socket") -> AsyncIterator[int]:
    """Serve the simulator on a free loopback port; yield the port, then stop the server."""
    task = asyncio.create_task(sim.serve_tcp(LOOPBACK, 0, framer=framer))
    try:
        await asyncio.wait_for(sim.wait_started(), 5)
        yield sim.listening_port
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@contextlib.asynccontextmanager
async def connected(
    port: int, timeout: float = 2.0, framer: FramerType = FramerType.SOCKET
) -> AsyncIterator[AsyncModbusTcpClient]:
    """A connected TCP client that makes one attempt per request; closed on exit."""
    client = AsyncModbusTcpClient(LOOPBACK, port=port, framer=framer, timeout=timeout, retries=0)
    try:
        assert await client.connect()
        yield client
    finally:
        client.close()


async def read_words(client, point: ModbusPoint, unit: int) -> list[int]:
    """The point's registers (or its bit) as read over the wire."""
    read = {
        "coil": client.read_coils,
        "discrete": client.read_discrete_inputs,
        "holding": client.read_holding_registers,
        "input": client.read_input_registers,
    }[point.table]
    response = await read(point.address, count=point.words, device_id=unit)
    assert not response.isError(), f"{point.key}: {response}"
    if point.table in BIT_TABLES:
        return [int(b) for b in response.bits[: point.words]]
    return list(response.registers)


async def read_settled(client, sim: Simulator, unit: int, point: ModbusPoint):
    """The decoded read and `value()`, from a read no tick happened during."""
    for _ in range(10):
        before = sim.value(unit, point.key)
        decoded = codec.decode(point, await read_words(client, point, unit))
        if sim.value(unit, point.key) == before:
            return decoded, before
    raise AssertionError(f"{point.key} kept changing during reads")


def is_energy(point: ModbusPoint) -> bool:
    return (point.unit or "").lower() in ENERGY_UNITS or "energy" in point.key.lower()


def plc() -> profiles.Profile:
    return profiles.load("generic_plc")


def test_every_point_of_every_profile_reads_back_as_its_value():
    ids = profiles.available()
    units = [UnitSpec(n, profile_id) for n, profile_id in enumerate(ids, 1)]

    async def scenario() -> None:
        sim = Simulator(units, seed=7)
        async with serving(sim) as port, connected(port) as client:
            for spec in units:
                for point in profiles.load(spec.profile).points:
                    decoded, value = await read_settled(client, sim, spec.unit_id, point)
                    assert decoded == value, f"{spec.profile}.{point.key}"
                    assert isinstance(value, str) or math.isfinite(value), point.key

    asyncio.run(scenario())


def test_energy_counters_never_decrease_and_measurements_stay_plausible():
    units = [UnitSpec(n, pid) for n, pid in enumerate(profiles.available(), 1)]
    sim = Simulator(units, seed=3)
    points = [(s.unit_id, p) for s in units for p in profiles.load(s.profile).points]
    energy = [(u, p) for u, p in points if is_energy(p) and not p.writable]
    first = {(u, p.key): sim.value(u, p.key) for u, p in energy}
    last = dict(first)
    for n in range(400):
        sim.tick(3600.0 if n % 100 == 0 else 0.5)
        for unit, point in energy:
            now = sim.value(unit, point.key)
            assert now >= last[unit, point.key], f"{point.key} fell from {last} to {now}"
            last[unit, point.key] = now
        for unit, point in points:
            value = sim.value(unit, point.key)
            if point.unit == "Hz":
                assert 49.8 <= value <= 50.2, point.key
            elif point.unit == "V":
                assert 200 <= value <= 260 or 350 <= value <= 450, point.key
    assert all(last[k] > first[k] for k in first), "some energy counter never rose"


def test_values_move_while_serving():
    walking = [p for p in plc().points if p.table == "input" and p.data_type != "string"]

    async def scenario() -> None:
        sim = Simulator([UnitSpec(1, "generic_plc")])
        before = {p.key: sim.value(1, p.key) for p in walking}
        async with serving(sim):
            await asyncio.sleep(1.2)  # two ticks at least
        moved = [p.key for p in walking if sim.value(1, p.key) != before[p.key]]
        assert len(moved) >= 3, moved

    asyncio.run(scenario())


def test_a_dead_unit_times_out_while_another_unit_on_the_same_server_answers():
    faults = Faults(dead_units={2})
    point = plc().point("tank_level")

    async def scenario() -> None:
        sim = Simulator([UnitSpec(1, "generic_plc"), UnitSpec(2, "generic_plc")], faults)
        async with serving(sim) as port, connected(port, timeout=0.3) as client:
            started = time.monotonic()
            with pytest.raises(ModbusIOException):
                await read_words(client, point, 2)
            assert time.monotonic() - started >= 0.3
            decoded, value = await read_settled(client, sim, 1, point)
            assert decoded == value
            faults.dead_units.clear()
            decoded, value = await read_settled(client, sim, 2, point)
            assert decoded == value

    asyncio.run(scenario())


def test_a_slow_unit_answers_after_its_delay():
    faults = Faults(slow_units={1: 0.4})
    point = plc().point("tank_temperature")

    async def scenario() -> None:
        sim = Simulator([UnitSpec(1, "generic_plc")], faults)
        async with serving(sim) as port, connected(port, timeout=3) as client:
            started = time.monotonic()
            words = await read_words(client, point, 1)
            assert time.monotonic() - started >= 0.4
            assert len(words) == point.words

    asyncio.run(scenario())


def test_a_late_reply_from_a_slow_unit_does_not_answer_the_next_request():
    faults = Faults(slow_units={2: 0.8})
    setpoint = plc().point("temperature_setpoint")

    async def scenario() -> None:
        sim = Simulator([UnitSpec(1, "generic_plc"), UnitSpec(2, "generic_plc")], faults)
        sim.set_value(1, "temperature_setpoint", 12.3)  # held: ticks leave setpoints alone
        async with serving(sim) as port, connected(port, timeout=0.5) as client:
            with pytest.raises(ModbusIOException):
                await client.read_input_registers(0, count=10, device_id=2)
            # Unit 2's reply lands at 0.8 s, while this request (answered at 0.9 s) waits.
            faults.slow_units[1] = 0.4
            assert codec.decode(setpoint, await read_words(client, setpoint, 1)) == 12.3

    asyncio.run(scenario())


def test_an_illegal_address_draws_exception_2_and_its_neighbours_still_answer():
    faults = Faults(illegal_addresses={1: {("input", 1), ("holding", 1)}})

    async def scenario() -> None:
        sim = Simulator([UnitSpec(1, "generic_plc")], faults)
        async with serving(sim) as port, connected(port) as client:
            refused = await client.read_input_registers(0, count=3, device_id=1)
            assert refused.isError() and refused.exception_code == 2
            written = await client.write_register(1, 10, device_id=1)
            assert written.isError() and written.exception_code == 2
            fine = await client.read_input_registers(2, count=2, device_id=1)
            assert not fine.isError()

    asyncio.run(scenario())


def test_a_read_longer_than_the_block_limit_draws_exception_2():
    faults = Faults(max_block=4)

    async def scenario() -> None:
        sim = Simulator([UnitSpec(1, "generic_plc")], faults)
        async with serving(sim) as port, connected(port) as client:
            too_long = await client.read_input_registers(0, count=5, device_id=1)
            assert too_long.isError() and too_long.exception_code == 2
            too_many_bits = await client.read_coils(0, count=5, device_id=1)
            assert too_many_bits.isError() and too_many_bits.exception_code == 2
            fits = await client.read_input_registers(0, count=4, device_id=1)
            assert not fits.isError() and len(fits.registers) == 4

    asyncio.run(scenario())


def test_reads_past_the_end_of_the_map_draw_exception_2():
    last_input = max(p.end for p in plc().points if p.table == "input")
    last_holding = max(p.end for p in plc().points if p.table == "holding")

    async def scenario() -> None:
        sim = Simulator([UnitSpec(1, "generic_plc")])
        async with serving(sim) as port, connected(port) as client:
            past = await client.read_input_registers(last_input - 1, count=2, device_id=1)
            assert past.isError() and past.exception_code == 2
            end = await client.read_input_registers(last_input - 1, count=1, device_id=1)
            assert not end.isError()
            beyond = await client.write_register(last_holding, 1, device_id=1)
            assert beyond.isError() and beyond.exception_code == 2

    asyncio.run(scenario())


def test_a_write_to_a_read_only_register_draws_exception_2():
    found = next(
        (
            (pid, point)
            for pid in profiles.available()
            for point in profiles.load(pid).points
            if point.table == "holding" and not point.writable
        ),
        None,
    )
    if found is None:
        pytest.skip("no built-in profile has a read-only holding register")
    profile_id, point = found

    async def scenario() -> None:
        sim = Simulator([UnitSpec(1, profile_id)])
        before = sim.value(1, point.key)
        async with serving(sim) as port, connected(port) as client:
            refused = await client.write_register(point.address, 7, device_id=1)
            assert refused.isError() and refused.exception_code == 2
        assert sim.value(1, point.key) == before or not isinstance(before, str)

    asyncio.run(scenario())


def test_a_client_write_to_a_writable_holding_register_round_trips():
    setpoint = plc().point("temperature_setpoint")
    flow = plc().point("flow_setpoint")

    async def scenario() -> None:
        sim = Simulator([UnitSpec(1, "generic_plc")])
        async with serving(sim) as port, connected(port) as client:
            [word] = codec.encode(setpoint, 42.5)
            assert not (await client.write_register(setpoint.address, word, device_id=1)).isError()
            words = codec.encode(flow, 17.25)
            assert not (await client.write_registers(flow.address, words, device_id=1)).isError()
            assert not (await client.write_coil(0, True, device_id=1)).isError()
            sim.tick(60.0)  # setpoints and commands hold what the client wrote
            assert sim.value(1, "temperature_setpoint") == 42.5
            assert sim.value(1, "flow_setpoint") == 17.25
            assert sim.value(1, "pump_run") == 1.0
            assert codec.decode(setpoint, await read_words(client, setpoint, 1)) == 42.5

    asyncio.run(scenario())


def test_set_value_writes_through_the_codec_including_single_bits():
    sim = Simulator([UnitSpec(1, "generic_plc")])
    sim.set_value(1, "tank_level", 61.7)
    sim.set_value(1, "device_name", "Station 4")
    sim.set_value(1, "status_word", 0)
    sim.set_value(1, "status_fault", True)
    assert sim.value(1, "tank_level") == 61.7
    assert sim.value(1, "device_name") == "Station 4"
    assert sim.value(1, "status_fault") == 1.0
    assert sim.value(1, "status_word") == 4.0  # bit 2 of the same register
    with pytest.raises(ValueError):
        sim.set_value(1, "tank_level", 61.75)  # not a multiple of the scale 0.1


def test_request_count_counts_every_request_once_answered_or_not():
    faults = Faults(dead_units={2})

    async def scenario() -> None:
        sim = Simulator([UnitSpec(1, "generic_plc"), UnitSpec(2, "generic_plc")], faults)
        async with serving(sim) as port, connected(port, timeout=0.3) as client:
            await client.read_input_registers(0, count=2, device_id=1)
            await client.write_register(0, 200, device_id=1)  # pymodbus writes, then reads back
            await client.write_coil(0, True, device_id=1)
            with pytest.raises(ModbusIOException):
                await client.read_input_registers(0, count=2, device_id=2)
        assert faults.request_count == 4

    asyncio.run(scenario())


def test_rtu_framing_over_tcp_serves_a_read():
    point = plc().point("inlet_flow")

    async def scenario() -> None:
        sim = Simulator([UnitSpec(5, "generic_plc")])
        async with serving(sim, framer="rtu") as port, connected(port, framer=FramerType.RTU) as c:
            decoded, value = await read_settled(c, sim, 5, point)
            assert decoded == value

    asyncio.run(scenario())


@pytest.fixture
def pty_pair() -> Iterator[tuple[str, str]]:
    """Two linked pseudo-terminals from socat, like a serial cable between two ports."""
    pytest.importorskip("serial", reason="pyserial (pymodbus's serial transport) is not installed")
    socat = shutil.which("socat")
    if socat is None:
        pytest.skip("socat is not installed (apt-get install socat) to link two ptys")
    process = subprocess.Popen(
        [socat, "-d", "-d", "pty,raw,echo=0", "pty,raw,echo=0"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        paths: list[str] = []
        assert process.stderr is not None
        while len(paths) < 2:
            line = process.stderr.readline()
            assert line, "socat stopped before opening both ptys"
            if found := re.search(r"PTY is (\S+)", line):
                paths.append(found.group(1))
        yield paths[0], paths[1]
    finally:
        process.terminate()
        process.wait(10)
        if process.stderr is not None:
            process.stderr.close()


def test_rtu_over_a_pty_pair_serves_a_read(pty_pair):
    server_end, client_end = pty_pair
    point = plc().point("tank_temperature")

    async def scenario() -> None:
        sim = Simulator([UnitSpec(3, "generic_plc")])
        task = asyncio.create_task(sim.serve_rtu(server_end))
        client = AsyncModbusSerialClient(client_end, framer=FramerType.RTU, timeout=2, retries=0)
        try:
            await asyncio.wait_for(sim.wait_started(), 5)
            assert await client.connect()
            decoded, value = await read_settled(client, sim, 3, point)
            assert decoded == value
        finally:
            client.close()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    asyncio.run(scenario())


def simulator_process(*args: str) -> list[str]:
    return [sys.executable, "-m", "drivers.modbus.simulator", *args]


def test_the_command_serves_until_sigterm_and_exits_0():
    command = simulator_process("--port", "0", "--unit", "1=generic_plc", "--seed", "5")
    process = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        found = re.fullmatch(r"listening on tcp://127\.0\.0\.1:(\d+)", line)
        assert found, f"unexpected first line {line!r}"
        point = plc().point("tank_level")

        async def scenario() -> None:
            async with connected(int(found.group(1))) as client:
                words = await read_words(client, point, 1)
                assert 0 <= codec.decode(point, words) <= 100

        asyncio.run(scenario())
        process.send_signal(signal.SIGTERM)
        assert process.wait(10) == 0
    finally:
        if process.poll() is None:
            process.kill()
        _out, err = process.communicate(timeout=10)
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("unit", "named"),
    [
        ("1:generic_plc", "ID=PROFILE"),
        ("1=no_such_profile", "no_such_profile"),
        ("0=generic_plc", "1-247"),
    ],
)
def test_the_command_rejects_a_bad_unit_in_one_line_with_exit_2(unit, named):
    result = subprocess.run(
        simulator_process("--port", "0", "--unit", unit),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "--unit" in lines[0] and named in lines[0]
    assert result.stdout == ""
