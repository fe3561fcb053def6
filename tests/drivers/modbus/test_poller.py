"""The bus poller against real pymodbus servers on loopback (and a pty pair for RTU)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import shutil
import statistics
import subprocess
from collections.abc import AsyncIterator

import pytest

from drivers.modbus import ModbusDriver, WriteRefused, add_device, profiles
from drivers.modbus.planner import plan
from drivers.modbus.simulator import Faults, Simulator, UnitSpec
from edge.models import Quality
from edge.store import Store


@contextlib.asynccontextmanager
async def polling(store: Store) -> AsyncIterator[ModbusDriver]:
    driver = ModbusDriver(store, store.organization.id)
    task = asyncio.create_task(driver.run())
    try:
        yield driver
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def tcp(port: int, unit: int = 1, timeout_s: float = 1.0, **extra) -> dict:
    return {"host": "127.0.0.1", "port": port, "unit_id": unit, "timeout_s": timeout_s, **extra}


def readings_of(store: Store, device_id: str, key: str) -> list:
    org = store.organization.id
    (point,) = [p for p in store.points(org, device_id) if p.key == key]
    return store.range(org, point.id, 0, 2**62, limit=10_000).items


def close_enough(got: float, want: float, point) -> bool:
    if point.data_type == "float32":
        return math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-6)
    return math.isclose(got, want, rel_tol=1e-12, abs_tol=1e-9)


@pytest.mark.parametrize("profile_id", profiles.available())
def test_every_point_of_every_profile_reads_back_what_the_device_holds(
    store, run, modbus_server, profile_id
):
    server = modbus_server({1: profile_id}, frozen=True)
    sim = server.simulator
    org = store.organization.id

    async def scenario() -> dict[str, float | None]:
        device = add_device(store, org, name=profile_id, transport="modbus_tcp",
                            connection=tcp(server.port), profile=profile_id)  # fmt: skip
        async with polling(store) as driver:
            await asyncio.sleep(1.5)
            (poller,) = driver.pollers
            attributes = poller.states[device.id].attributes
        points = {p.key: p.id for p in store.points(org, device.id)}
        latest = store.latest(org, list(points.values()))
        got = {key: latest[pid].value if pid in latest else None for key, pid in points.items()}
        return {**got, **attributes}

    got = run(scenario())
    profile = profiles.load(profile_id)
    for point in profile.points:
        want = sim.value(1, point.key)
        if isinstance(want, str):
            assert got[point.key] == want, point.key
        elif math.isnan(want):
            assert got[point.key] is None, f"{point.key}: 'not available' stored as a value"
        else:
            assert got[point.key] is not None, f"{point.key} was never read"
            assert close_enough(got[point.key], want, point), (point.key, got[point.key], want)


def test_a_poll_sends_exactly_the_planned_number_of_requests(store, run, modbus_server):
    server = modbus_server({1: "eastron_sdm630"})
    profile = profiles.load("eastron_sdm630")
    one_second = [p for p in profile.points if p.interval_s == 1.0]

    async def scenario() -> tuple[int, int]:
        add_device(store, store.organization.id, name="m", transport="modbus_tcp",
                   connection=tcp(server.port), profile="eastron_sdm630")  # fmt: skip
        async with polling(store) as driver:
            await asyncio.sleep(1.2)
            (poller,) = driver.pollers
            before = poller.stats.requests
            await asyncio.sleep(3.0)
            return poller.stats.requests - before, poller.stats.errors

    sent, errors = run(scenario())
    from drivers.modbus.bus import limits, parse_connection

    blocks = plan(one_second, limits("modbus_tcp", parse_connection("modbus_tcp", tcp(1)), 80))
    assert errors == 0
    # Three seconds of 1 s polls (the 60 s points are not due again in this window).
    assert sent in (3 * len(blocks), 4 * len(blocks)), (sent, len(blocks))
    assert len(blocks) < len(one_second)


def test_a_dead_unit_does_not_slow_the_others_on_its_bus(store, run, modbus_server):
    server = modbus_server({1: "generic_plc", 2: "generic_plc"}, Faults(dead_units={2}))
    org = store.organization.id
    point = {"key": "level", "table": "input", "address": 1, "data_type": "uint16",
             "interval_s": 0.25}  # fmt: skip

    async def scenario() -> tuple[str, str]:
        alive = add_device(store, org, name="alive", transport="modbus_tcp",
                           connection=tcp(server.port, 1), points=[point])  # fmt: skip
        silent = tcp(server.port, 2, timeout_s=0.2)
        dead = add_device(store, org, name="dead", transport="modbus_tcp",
                          connection=silent, points=[point])  # fmt: skip
        async with polling(store):
            await asyncio.sleep(6.0)
        return alive.id, dead.id

    alive_id, dead_id = run(scenario())
    stamps = [r.ts_ms for r in readings_of(store, alive_id, "level")][2:]
    periods = [b - a for a, b in itertools.pairwise(stamps)]
    assert len(periods) > 15
    assert statistics.fmean(periods) == pytest.approx(250, rel=0.10)
    dead_readings = readings_of(store, dead_id, "level")
    assert dead_readings, "the dead unit's outage left no trace"
    assert all(r.value is None and r.quality is Quality.COMM_ERROR for r in dead_readings)
    types = [(e.type, e.device_id) for e in store.events(org)]
    assert ("device.offline", dead_id) in types
    assert ("device.offline", alive_id) not in types


def test_a_restarted_server_is_reconnected_and_the_unit_comes_back(store, run, modbus_server):
    server = modbus_server({1: "generic_plc"})
    org = store.organization.id
    point = {"key": "level", "table": "input", "address": 1, "data_type": "uint16",
             "interval_s": 0.2}  # fmt: skip

    async def scenario() -> str:
        device = add_device(store, org, name="plc", transport="modbus_tcp",
                            connection=tcp(server.port, timeout_s=0.3), points=[point])  # fmt: skip
        async with polling(store) as driver:
            await asyncio.sleep(1.0)
            await asyncio.to_thread(server.stop)  # mid-poll: the connection drops
            await asyncio.sleep(2.0)
            assert driver.pollers[0].states[device.id].online is False
            await asyncio.to_thread(server.start)
            for _ in range(100):
                await asyncio.sleep(0.1)
                if driver.pollers[0].states[device.id].online:
                    break
            await asyncio.sleep(0.5)
        return device.id

    device_id = run(scenario())
    types = [e.type for e in reversed(store.events(org)) if e.device_id == device_id]
    assert "device.offline" in types and "device.online" in types
    assert types.index("device.online") > types.index("device.offline")
    last = readings_of(store, device_id, "level")[-1]
    assert last.quality is Quality.GOOD and last.value is not None


def test_an_illegal_address_reply_splits_the_block_and_isolates_the_bad_point(
    store, run, modbus_server
):
    server = modbus_server({1: "generic_plc"}, Faults(illegal_addresses={1: {("holding", 1)}}))
    org = store.organization.id
    points = [
        {"key": "a", "table": "holding", "address": 0, "data_type": "int16", "interval_s": 0.3},
        {"key": "b", "table": "holding", "address": 1, "data_type": "uint16", "interval_s": 0.3},
        {"key": "c", "table": "holding", "address": 2, "data_type": "float32",
         "interval_s": 0.3},
    ]  # fmt: skip

    async def scenario() -> tuple[str, int]:
        device = add_device(store, org, name="plc", transport="modbus_tcp",
                            connection=tcp(server.port), points=points)  # fmt: skip
        async with polling(store) as driver:
            await asyncio.sleep(1.0)
            (poller,) = driver.pollers
            before = poller.stats.requests
            await asyncio.sleep(0.9)
            return device.id, poller.stats.requests - before

    device_id, requests = run(scenario())
    assert [r.quality for r in readings_of(store, device_id, "b")] == [Quality.DEVICE_EXCEPTION]
    assert readings_of(store, device_id, "b")[0].value is None
    for key in ("a", "c"):
        readings = readings_of(store, device_id, key)
        assert len(readings) >= 4 and all(r.quality is Quality.GOOD for r in readings)
    assert requests <= 3 * 2, "the split plan is not kept: the bad block is retried"
    assert any(e.type == "modbus.point_rejected" for e in store.events(org))


def test_a_device_that_rejects_long_reads_is_read_in_shorter_ones(store, run, modbus_server):
    server = modbus_server({1: "eastron_sdm630"}, Faults(max_block=10), frozen=True)
    sim = server.simulator
    org = store.organization.id

    async def scenario() -> str:
        device = add_device(store, org, name="m", transport="modbus_tcp",
                            connection=tcp(server.port), profile="eastron_sdm630")  # fmt: skip
        async with polling(store):
            await asyncio.sleep(1.5)
        return device.id

    device_id = run(scenario())
    voltage = readings_of(store, device_id, "l1_voltage")
    assert voltage and voltage[-1].quality is Quality.GOOD
    assert voltage[-1].value == pytest.approx(sim.value(1, "l1_voltage"), rel=1e-6)


def test_a_write_round_trips_and_is_audited(store, run, modbus_server):
    server = modbus_server({1: "generic_plc"})
    sim = server.simulator
    org = store.organization.id

    async def scenario() -> tuple:
        device = add_device(store, org, name="plc", transport="modbus_tcp",
                            connection=tcp(server.port), profile="generic_plc")  # fmt: skip
        async with polling(store) as driver:
            await asyncio.sleep(0.5)
            flow = await driver.write(device.id, "flow_setpoint", 12.5, actor="key_test")
            coil = await driver.write(device.id, "pump_run", 1)
            with pytest.raises(WriteRefused, match="read-only"):
                await driver.write(device.id, "tank_level", 3)
            with pytest.raises(WriteRefused, match="above"):
                await driver.write(device.id, "flow_setpoint", 500)
            with pytest.raises(WriteRefused, match="no point"):
                await driver.write(device.id, "nope", 1)
        return flow, coil

    flow, coil = run(scenario())
    assert flow == (12.5, True) and coil == (1.0, True)
    assert sim.value(1, "flow_setpoint") == 12.5
    assert sim.value(1, "pump_run") == 1.0
    audit = [e for e in store.events(org) if e.type == "device.command"]
    assert len(audit) == 2
    assert any(e.data["actor"] == "key_test" and e.data["point"] == "flow_setpoint" for e in audit)


def test_rtu_over_tcp_polls_like_tcp(store, run, modbus_server):
    server = modbus_server({3: "eastron_sdm120"}, framer="rtu", frozen=True)
    sim = server.simulator
    org = store.organization.id

    async def scenario() -> str:
        device = add_device(store, org, name="m", transport="modbus_rtu_over_tcp",
                            connection=tcp(server.port, 3), profile="eastron_sdm120")  # fmt: skip
        async with polling(store):
            await asyncio.sleep(1.5)
        return device.id

    device_id = run(scenario())
    assert readings_of(store, device_id, "voltage")[-1].value == pytest.approx(
        sim.value(3, "voltage"), rel=1e-6
    )


@pytest.fixture
def pty_pair():
    """Two connected pseudo-terminals, as a serial cable between gateway and meter."""
    if shutil.which("socat") is None:
        pytest.skip("socat is not installed (.ci/run installs it)")
    proc = subprocess.Popen(
        ["socat", "-d", "-d", "pty,raw,echo=0", "pty,raw,echo=0"],
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    ends = []
    while len(ends) < 2:
        line = proc.stderr.readline()
        if "PTY is" in line:
            ends.append(line.rsplit(" ", 1)[1].strip())
    try:
        yield ends
    finally:
        proc.terminate()
        proc.wait(5)
        proc.stderr.close()


def test_rtu_on_a_serial_line_polls(store, run, pty_pair):
    device_end, gateway_end = pty_pair
    sim = Simulator([UnitSpec(5, "generic_plc")])
    sim.tick = lambda dt_s: None
    org = store.organization.id

    async def scenario() -> str:
        server = asyncio.create_task(sim.serve_rtu(device_end, baudrate=19200))
        await asyncio.wait_for(sim.wait_started(), 5)
        try:
            device = add_device(store, org, name="plc", transport="modbus_rtu",
                                connection={"port": gateway_end, "baudrate": 19200,
                                            "unit_id": 5, "timeout_s": 0.5},
                                profile="generic_plc")  # fmt: skip
            async with polling(store):
                await asyncio.sleep(2.5)
        finally:
            server.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await server
        return device.id

    device_id = run(scenario())
    assert readings_of(store, device_id, "tank_temperature")[-1].value == pytest.approx(
        sim.value(5, "tank_temperature")
    )


def test_a_device_added_while_polling_is_picked_up_without_a_restart(store, run, modbus_server):
    server = modbus_server({1: "generic_plc", 2: "generic_plc"})
    org = store.organization.id
    point = {"key": "level", "table": "input", "address": 1, "data_type": "uint16",
             "interval_s": 0.2}  # fmt: skip

    async def scenario() -> str:
        add_device(store, org, name="first", transport="modbus_tcp",
                   connection=tcp(server.port, 1), points=[point])  # fmt: skip
        async with polling(store) as driver:
            await asyncio.sleep(0.5)
            second = add_device(store, org, name="second", transport="modbus_tcp",
                                connection=tcp(server.port, 2), points=[point])  # fmt: skip
            for _ in range(80):
                await asyncio.sleep(0.1)
                if any(second.id in p.units for p in driver.pollers):
                    break
            await asyncio.sleep(0.6)
        return second.id

    second_id = run(scenario())
    assert readings_of(store, second_id, "level"), "the added device was never polled"
