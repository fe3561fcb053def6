"""Modbus: tags/s the driver polls from simulated meters in other processes, and its CPU cost.

Four simulator processes (`python -m drivers.modbus.simulator`), each on its own
loopback port with ten Eastron SDM630 units (54 float32 points in 4 planned
requests), stand in for meters behind Modbus TCP gateways. The gateway side, a
store in a temporary directory and a `ModbusDriver` (one poller per port, so one
transaction at a time per port), runs in this process. Two loads, each measured
over a window that starts and ends as one device completes a poll, after a warm-up:

- nominal: every point polled every 0.1 s, 21,600 tags/s offered. Measured: tags
  polled per second (readings the pollers had committed by the store) and how
  much the store's queue grew meanwhile; the gateway's CPU (this process: event
  loop, pollers and the store's writer thread) per million tags and as a share of
  one core, with its two busy threads apart; the simulators' CPU; bus busy (the
  share of the window a bus spent in requests, mean of the buses); the mean
  request latency; requests per poll of that one device against the planner's
  block count; errors, timeouts and overruns (polls more than an interval late).
- flat out: every point polled every 0.02 s, more than the gateway can poll, to
  find the ceiling and what sets it: a saturated gateway process (its threads
  share one GIL), event loop thread or simulator process, all the machine's
  cores, or else the buses' round trips.

Stopping the driver is retried until it has stopped: on Python 3.11 a cancel that
lands while a reply is being delivered is lost inside `asyncio.wait_for` (fixed in
3.12) and the poller keeps polling, so the cancels it took are reported too.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import select
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final

import msgspec

from drivers.modbus import profiles
from drivers.modbus.bus import limits, parse_connection
from drivers.modbus.devices import add_device
from drivers.modbus.driver import ModbusDriver
from drivers.modbus.planner import Block, plan
from drivers.modbus.units import BusStats, UnitState
from edge.store import Store
from edge.store._facade import MAX_PAGE
from tests.bench._common import QUICK, Result, Sizes, at_least, at_most, open_store

PROFILE: Final = "eastron_sdm630"
SIMULATORS: Final = 4
UNITS_PER_SIMULATOR: Final = 10
TIMEOUT_S: Final = 1.0
TARGET_TAGS_PER_S: Final = 20_000
# A share of one core above which a thread or process counts as saturated.
SATURATED: Final = 0.9
# A simulator prints its "listening on" line well within this; it gets this long to stop.
START_TIMEOUT_S: Final = 30.0
STOP_TIMEOUT_S: Final = 5.0
# How often the probe device's last completed poll is looked at, and for how long at most.
WATCH_S: Final = 0.001
WATCH_TIMEOUT_S: Final = 5.0
# How long one cancel of the driver is given to take, and how many are tried.
CANCEL_WAIT_S: Final = 0.2
CANCEL_TRIES: Final = 20
WRITER_THREAD: Final = "edge-store-writer"
ROOT: Final = Path(__file__).resolve().parents[2]
TICKS_PER_S: Final = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class _Load:
    """How often every point is polled, and how long to warm up and to measure."""

    interval_s: float
    warmup_s: float
    window_s: float


NOMINAL: Final = {"full": _Load(0.1, 4.0, 20.0), "quick": _Load(0.1, 2.0, 5.0)}
FLAT_OUT: Final = {"full": _Load(0.02, 3.0, 10.0), "quick": _Load(0.02, 1.5, 3.0)}


@dataclass(frozen=True, slots=True)
class _Simulator:
    process: subprocess.Popen[str]
    port: int


@dataclass(frozen=True, slots=True)
class _Snapshot:
    """Counters at one moment, taken right after the probe device completed a poll."""

    wall_s: float
    cpu_s: float
    loop_cpu_s: float
    writer_cpu_s: float
    simulator_cpu_s: tuple[float, ...]
    buses: tuple[BusStats, ...]
    queued_readings: int
    probe_requests: int
    probe_success_ms: int


@dataclass(frozen=True, slots=True)
class _Window:
    """What one load gave over its window."""

    wall_s: float
    cpu_s: float
    loop_cpu_s: float
    writer_cpu_s: float
    simulator_cpu_s: tuple[float, ...]
    bus: BusStats  # summed over the buses
    buses: int
    backlog: int  # readings the store's queue grew by
    probe_requests: int
    probe_polls: int
    planned_blocks: int
    cancels: int

    @property
    def tags_per_s(self) -> float:
        return self.bus.readings_committed / self.wall_s

    @property
    def backlog_per_s(self) -> float:
        return self.backlog / self.wall_s

    def cores(self, cpu_s: float) -> float:
        return cpu_s / self.wall_s


def _cpu_s(stat_path: str) -> float:
    """User plus system CPU seconds of a process or thread, from its /proc stat file."""
    stat = Path(stat_path).read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / TICKS_PER_S


def _thread_cpu_s(native_id: int | None) -> float:
    return 0.0 if native_id is None else _cpu_s(f"/proc/self/task/{native_id}/stat")


def _start(count: int, units: int, log: IO[str]) -> list[_Simulator]:
    """Start `count` simulators of `units` units each on loopback ports they choose."""
    unit_args = [arg for u in range(1, units + 1) for arg in ("--unit", f"{u}={PROFILE}")]
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "drivers.modbus.simulator",
                "--port",
                "0",
                "--seed",
                str(k),
                *unit_args,
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
        for k in range(count)
    ]
    simulators = []
    deadline = time.monotonic() + START_TIMEOUT_S
    try:
        for process in processes:
            assert process.stdout is not None
            ready, _, _ = select.select([process.stdout], [], [], deadline - time.monotonic())
            line = process.stdout.readline() if ready else ""
            if not line.startswith("listening on tcp://"):
                raise RuntimeError(f"simulator {process.pid} did not start: {line!r}")
            simulators.append(_Simulator(process, int(line.rsplit(":", 1)[1])))
    except BaseException:
        _stop(processes)
        raise
    return simulators


def _stop(processes: list[subprocess.Popen[str]]) -> None:
    """SIGTERM every process, then SIGKILL those still running after the timeout."""
    for process in processes:
        if process.poll() is None:
            process.terminate()
    deadline = time.monotonic() + STOP_TIMEOUT_S
    for process in processes:
        try:
            process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


@contextlib.contextmanager
def _simulators(count: int, units: int, directory: str) -> Iterator[list[_Simulator]]:
    """Running simulators, stopped on exit; their stderr goes to a file in `directory`."""
    with (Path(directory) / "simulators.log").open("w") as log:
        simulators = _start(count, units, log)
        try:
            yield simulators
        finally:
            _stop([s.process for s in simulators])


def _connection(simulator: _Simulator, unit: int) -> dict[str, Any]:
    return {"host": "127.0.0.1", "port": simulator.port, "unit_id": unit, "timeout_s": TIMEOUT_S}


def _add_devices(
    store: Store, simulators: list[_Simulator], units: int, interval_s: float
) -> list[str]:
    """One device per simulated unit, every point polled every `interval_s`; their ids."""
    org = store.organization.id
    points = [
        {**msgspec.to_builtins(p), "interval_s": interval_s} for p in profiles.load(PROFILE).points
    ]
    return [
        add_device(
            store,
            org,
            name=f"meter {k}.{u}",
            transport="modbus_tcp",
            profile=PROFILE,
            connection=_connection(sim, u),
            points=points,
        ).id
        for k, sim in enumerate(simulators)
        for u in range(1, units + 1)
    ]


def _probe_state(driver: ModbusDriver, device_id: str) -> UnitState:
    poller = next(p for p in driver.pollers if device_id in p.units)
    return poller.states[device_id]


async def _snapshot(
    store: Store,
    driver: ModbusDriver,
    probe: str,
    simulators: list[_Simulator],
    writer: int | None,
) -> _Snapshot:
    """Wait until the probe device completes a poll, then read every counter."""
    state = _probe_state(driver, probe)
    before = state.last_success_ms
    deadline = time.monotonic() + WATCH_TIMEOUT_S
    while state.last_success_ms == before:
        if time.monotonic() > deadline:
            raise RuntimeError(f"device {probe} completed no poll in {WATCH_TIMEOUT_S} s")
        await asyncio.sleep(WATCH_S)
    assert state.last_success_ms is not None
    return _Snapshot(
        wall_s=time.perf_counter(),
        cpu_s=time.process_time(),
        loop_cpu_s=_thread_cpu_s(threading.get_native_id()),
        writer_cpu_s=_thread_cpu_s(writer),
        simulator_cpu_s=tuple(_cpu_s(f"/proc/{s.process.pid}/stat") for s in simulators),
        buses=tuple(dataclasses.replace(p.stats) for p in driver.pollers),
        queued_readings=store.stats().queued_readings,
        probe_requests=state.requests,
        probe_success_ms=state.last_success_ms,
    )


async def _stop_driver(task: asyncio.Task[None]) -> int:
    """Cancel the driver until it has stopped; how many cancels that took."""
    for cancels in range(1, CANCEL_TRIES + 1):
        task.cancel()
        await asyncio.wait({task}, timeout=CANCEL_WAIT_S)
        if task.done():
            return cancels
    raise RuntimeError(f"the driver did not stop after {CANCEL_TRIES} cancels")


async def _run_driver(
    store: Store, probe: str, simulators: list[_Simulator], load: _Load
) -> tuple[_Snapshot, _Snapshot, int]:
    """Run the driver; counters at the start and the end of the window, and cancels to stop."""
    writer = next((t.native_id for t in threading.enumerate() if t.name == WRITER_THREAD), None)
    driver = ModbusDriver(store, store.organization.id)
    task = asyncio.create_task(driver.run())
    try:
        await asyncio.sleep(load.warmup_s)
        if task.done():
            task.result()
        start = await _snapshot(store, driver, probe, simulators, writer)
        await asyncio.sleep(load.window_s)
        end = await _snapshot(store, driver, probe, simulators, writer)
    finally:
        cancels = await _stop_driver(task)
    while store.stats().queued_readings:
        await asyncio.sleep(0.01)
    return start, end, cancels


def _plan(store: Store, device_id: str) -> list[Block]:
    """The requests the planner makes of a device's points, with the device's limits."""
    device = store.device(store.organization.id, device_id)
    connection = parse_connection(device.type, device.connection)
    profile = profiles.load(PROFILE)
    return plan(profile.points, limits(device.type, connection, profile.max_block))


def _polls(store: Store, device_id: str, after_ms: int, until_ms: int) -> int:
    """Completed polls of the device in (after_ms, until_ms].

    A poll reads its planned blocks in order and completes once it has read the last,
    so the readings of a point in the last block, stamped as it was read, count polls.
    """
    org = store.organization.id
    last = _plan(store, device_id)[-1].points[-1].key
    (point_id,) = (p.id for p in store.points(org, device_id) if p.key == last)
    count, cursor = 0, None
    while True:
        page = store.range(org, point_id, after_ms + 1, until_ms + 1, cursor, MAX_PAGE)
        count += len(page.items)
        cursor = page.next_cursor
        if cursor is None:
            return count


def _difference(start: _Snapshot, end: _Snapshot) -> BusStats:
    """Each counter's increase, summed over the buses."""
    pairs = list(zip(start.buses, end.buses, strict=True))
    return BusStats(
        **{
            name: sum(getattr(b, name) - getattr(a, name) for a, b in pairs)
            for name in (f.name for f in dataclasses.fields(BusStats))
        }
    )


def _measure(simulators: list[_Simulator], load: _Load) -> _Window:
    """Devices for every simulated unit in a new store, polled at the load's interval."""
    with tempfile.TemporaryDirectory() as tmp, open_store(tmp) as store:
        devices = _add_devices(store, simulators, UNITS_PER_SIMULATOR, load.interval_s)
        probe = devices[0]
        start, end, cancels = asyncio.run(_run_driver(store, probe, simulators, load))
        polls = _polls(store, probe, start.probe_success_ms, end.probe_success_ms)
        blocks = len(_plan(store, probe))
    return _Window(
        wall_s=end.wall_s - start.wall_s,
        cpu_s=end.cpu_s - start.cpu_s,
        loop_cpu_s=end.loop_cpu_s - start.loop_cpu_s,
        writer_cpu_s=end.writer_cpu_s - start.writer_cpu_s,
        simulator_cpu_s=tuple(
            b - a for a, b in zip(start.simulator_cpu_s, end.simulator_cpu_s, strict=True)
        ),
        bus=_difference(start, end),
        buses=len(end.buses),
        backlog=end.queued_readings - start.queued_readings,
        probe_requests=end.probe_requests - start.probe_requests,
        probe_polls=polls,
        planned_blocks=blocks,
        cancels=cancels,
    )


def _busy(window: _Window) -> float:
    """The share of the window a bus spent in requests, mean of the buses."""
    return window.bus.latency_sum_s / window.wall_s / window.buses


def _limit(window: _Window) -> tuple[str, float, str]:
    """What held the flat-out rate down: a saturated thread, process or machine, else the buses."""
    cores = os.cpu_count() or 1
    machine = window.cores(window.cpu_s + sum(window.simulator_cpu_s))
    candidates = [
        ("gateway process (event loop + store writer, one GIL)", window.cores(window.cpu_s)),
        ("gateway event loop thread", window.cores(window.loop_cpu_s)),
        ("busiest simulator process", window.cores(max(window.simulator_cpu_s))),
    ]
    saturated = [c for c in candidates if c[1] >= SATURATED]
    if saturated:
        name, used = max(saturated, key=lambda c: c[1])
        return name, used, "cores"
    if machine >= SATURATED * cores:
        return f"the machine's {cores} cores (gateway + simulators)", machine, "cores"
    return "bus round trips (bus busy)", _busy(window), "x"


def _cost_rows(window: _Window, nominal: bool) -> list[Result]:
    """What polling cost the gateway and the simulators, and how busy the buses were."""
    bus, cores = window.bus, window.cores(window.cpu_s)
    failed = bus.errors + bus.timeouts
    return [
        Result("  store backlog growth", window.backlog_per_s, "readings/s"),
        Result("  gateway CPU per million tags", window.cpu_s / bus.readings_committed * 1e6, "s"),
        Result("  gateway CPU", cores, "cores", "< 1", cores < 1)
        if nominal
        else Result("  gateway CPU", cores, "cores"),
        Result("    of which the event loop thread", window.cores(window.loop_cpu_s), "cores"),
        Result("    of which the store writer thread", window.cores(window.writer_cpu_s), "cores"),
        Result(
            f"  simulators' CPU, {len(window.simulator_cpu_s)} processes",
            window.cores(sum(window.simulator_cpu_s)),
            "cores",
        ),
        Result("  bus busy, mean of buses", _busy(window), "x"),
        Result("  request latency, mean", bus.latency_sum_s / max(1, bus.requests) * 1e3, "ms"),
        Result("  requests sent", bus.requests / window.wall_s, "req/s"),
        at_most("  errors + timeouts", failed, "", 0)
        if nominal
        else Result("  errors + timeouts", failed, ""),
        Result("  overruns", bus.overruns, "polls"),
        Result("  cancels to stop the driver", window.cancels, ""),
    ]


def run(sizes: Sizes) -> list[Result]:
    """Poll the simulators at a nominal load, then flat out."""
    mode = "quick" if sizes == QUICK else "full"
    with (
        tempfile.TemporaryDirectory() as tmp,
        _simulators(SIMULATORS, UNITS_PER_SIMULATOR, tmp) as simulators,
    ):
        nominal = _measure(simulators, NOMINAL[mode])
        flat_out = _measure(simulators, FLAT_OUT[mode])
    devices = f"{SIMULATORS * UNITS_PER_SIMULATOR} x {PROFILE}"
    per_poll = nominal.probe_requests / nominal.probe_polls / nominal.planned_blocks
    limit, used, unit = _limit(flat_out)
    return [
        at_least(
            f"modbus tags polled, {devices} every {NOMINAL[mode].interval_s:g} s",
            nominal.tags_per_s,
            "tags/s",
            TARGET_TAGS_PER_S,
        ),
        *_cost_rows(nominal, nominal=True),
        Result(
            f"  requests per poll / planned ({nominal.planned_blocks} blocks)",
            per_poll,
            "x",
            "= 1.00",
            round(per_poll, 2) == 1.0,
        ),
        Result(
            f"modbus tags polled flat out, every {FLAT_OUT[mode].interval_s:g} s (committed)",
            flat_out.tags_per_s,
            "tags/s",
        ),
        *_cost_rows(flat_out, nominal=False),
        Result(f"  limited by the {limit}", used, unit),
    ]
