"""The bus poller: one per physical bus, one transaction at a time, never stopped by an error.

Each unit's points are planned into blocks per polling interval; each
(unit, interval) is a job on a fixed time grid, so a late poll does not
shift later ones. A unit that stops answering is backed off on its own: its
jobs wait, the other units keep their period, and only its own retries cost
bus time. A dropped connection is reopened with exponential backoff and
full jitter. Failed reads become a quality and an event, never a value.
Writes jump the queue of polls but still wait for the bus to be free.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import heapq
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from pymodbus.client.base import ModbusBaseClient
from pymodbus.exceptions import ConnectionException, ModbusException

from drivers.modbus import codec
from drivers.modbus.bus import BusKey, ModbusConnection, inter_frame_s, make_client
from drivers.modbus.planner import Block, Limits, plan, split
from drivers.modbus.points import ModbusPoint
from drivers.modbus.units import (
    BusStats,
    UnitConfig,
    UnitState,
    WriteFailed,
    WriteRefused,
    bus_samples,
)
from edge.models import Quality, Reading, now_ms
from edge.stats import Sample
from edge.store import Store

log = logging.getLogger(__name__)

ILLEGAL_ADDRESS: Final = 2
ILLEGAL_VALUE: Final = 3
# Gateway exceptions: the unit behind a TCP gateway did not answer; a timeout in all but name.
GATEWAY_EXCEPTIONS: Final = frozenset({0x0A, 0x0B})
# Consecutive failures before a unit counts as offline: one lost frame is not an outage.
OFFLINE_AFTER: Final = 2
# A silent unit is retried after 0.5 s, doubling up to this cap.
UNIT_BACKOFF_MAX_S: Final = 30.0
UNIT_BACKOFF_FIRST_S: Final = 0.5
# Reconnects start at 0.5 s and double up to this cap, with full jitter.
RECONNECT_MAX_S: Final = 30.0
# A point the device rejects (illegal address) is probed again this often.
BAD_POINT_RETRY_S: Final = 600.0
# With a deadband, an unchanged value is still stored this often, so "no data" means no data.
FORCE_REPORT_S: Final = 900.0
# While the store is backlogged, polls are held back in steps of this length.
BACKPRESSURE_PAUSE_S: Final = 0.05


class _DeviceException(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(f"exception reply {code}")
        self.code = code


@dataclass
class _Job:
    unit: UnitConfig
    interval_s: float
    blocks: list[Block]
    due: float

    def __lt__(self, other: _Job) -> bool:
        return self.due < other.due


@dataclass
class _Write:
    unit: UnitConfig
    point: ModbusPoint
    words: list[int]
    future: asyncio.Future[list[int]]


class BusPoller:
    """Polls every unit on one bus and performs writes to them, one transaction at a time."""

    def __init__(
        self,
        key: BusKey,
        transport: str,
        conn: ModbusConnection,
        units: list[UnitConfig],
        store: Store,
        client_factory: Callable[[BusKey, ModbusConnection], ModbusBaseClient] = make_client,
    ) -> None:
        self.key = key
        self._conn = conn
        self._store = store
        self._client_factory = client_factory
        self._client: ModbusBaseClient | None = None
        self._gap_s = inter_frame_s(transport, conn)
        self._jobs: list[_Job] = []
        self._writes: collections.deque[_Write] = collections.deque()
        self._wake = asyncio.Event()
        self._point_ids = {
            (u.device_id, b.point.key): b.point_id for u in units for b in u.bindings
        }
        self.units = {u.device_id: u for u in units}
        self.states = {u.device_id: UnitState() for u in units}
        self.stats = BusStats()
        self._connect_failures = 0
        self._trouble_logged = False
        now = time.monotonic()
        for unit in units:
            by_interval: dict[float, list[ModbusPoint]] = {}
            for binding in unit.bindings:
                by_interval.setdefault(binding.point.interval_s, []).append(binding.point)
            for interval, points in sorted(by_interval.items()):
                heapq.heappush(self._jobs, _Job(unit, interval, plan(points, unit.limits), now))

    async def run(self) -> None:
        """Poll until cancelled; every error is contained, counted and reported."""
        me = asyncio.current_task()
        try:
            while True:
                if me is not None and me.cancelling():
                    raise asyncio.CancelledError  # a cancel a library's wait_for swallowed
                try:
                    await self._step()
                except asyncio.CancelledError:
                    raise
                except Exception as error:  # the poller outlives any single failure
                    self._log_trouble("bus %s: unexpected error: %s", self.key, error, exc=True)
                    await asyncio.sleep(UNIT_BACKOFF_FIRST_S)
        finally:
            if self._client is not None:
                self._client.close()
                # The transport frees its socket on the next turn of the loop, which may be
                # ending: give it that turn.
                await asyncio.sleep(0)

    async def write(
        self, device_id: str, key: str, value: Any, actor: str = "gateway"
    ) -> tuple[float | int | str | None, bool]:
        """Write a point, read it back and record who did it; returns (read-back, matches)."""
        unit = self.units[device_id]
        binding = next((b for b in unit.bindings if b.point.key == key), None)
        if binding is None:
            raise WriteRefused(f"device {unit.name} has no point {key!r}")
        point = binding.point
        if not point.writable:
            raise WriteRefused(f"{key} is read-only")
        try:
            words = codec.encode(point, value)
        except ValueError as error:
            raise WriteRefused(str(error)) from None
        future: asyncio.Future[list[int]] = asyncio.get_running_loop().create_future()
        self._writes.append(_Write(unit, point, words, future))
        self._wake.set()
        try:
            read_back = await future
        except WriteFailed as error:
            await self._event(
                unit, "device.command_failed", "warning",
                f"{actor} could not write {key} = {value!r} on {unit.name}: {error}",
                {"actor": actor, "point": key, "value": value},
            )  # fmt: skip
            raise
        decoded, confirmed = codec.decode(point, read_back), list(read_back) == list(words)
        await self._event(
            unit, "device.command", "info",
            f"{actor} wrote {key} = {value!r} on {unit.name}; it reads back {decoded!r}",
            {"actor": actor, "point": key, "value": value, "read_back": decoded,
             "confirmed": confirmed},
        )  # fmt: skip
        return decoded, confirmed

    # The loop

    async def _step(self) -> None:
        if not await self._ensure_connected():
            return
        if self._writes:
            await self._perform_write(self._writes.popleft())
            return
        job = self._jobs[0]
        delay = job.due - time.monotonic()
        if delay > 0:
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)
            return
        if self._store.backlogged:
            # The store cannot keep up: polls wait (and count as overruns) rather than
            # piling readings into memory until the store starts refusing them.
            await asyncio.sleep(BACKPRESSURE_PAUSE_S)
            return
        heapq.heappop(self._jobs)
        state = self.states[job.unit.device_id]
        now = time.monotonic()
        if state.retry_at > now:
            job.due = self._next_slot(job.due, job.interval_s, state.retry_at)
        else:
            await self._poll(job, state)
            job.due = self._next_slot(job.due, job.interval_s, time.monotonic())
        heapq.heappush(self._jobs, job)

    def _next_slot(self, due: float, interval: float, not_before: float) -> float:
        nxt = due + interval
        if nxt < not_before:
            missed = int((not_before - nxt) // interval) + 1
            if not_before - due > interval * 2:
                self.stats.overruns += 1
            nxt += missed * interval
        return nxt

    async def _ensure_connected(self) -> bool:
        if self._client is not None and self._client.connected:
            return True
        if self._client is None:
            self._client = self._client_factory(self.key, self._conn)
        try:
            connected = await self._client.connect()
        except (OSError, ModbusException) as error:
            connected, reason = False, str(error)
        else:
            reason = "connection refused or timed out"
        if connected:
            if self._connect_failures:
                log.info("bus %s: connected again", self.key)
            self._connect_failures = 0
            self._trouble_logged = False
            self.stats.connects += 1
            return True
        self._connect_failures += 1
        self._log_trouble("bus %s: cannot connect (%s); retrying with backoff", self.key, reason)
        for unit in self.units.values():
            await self._unit_failed(unit, self.states[unit.device_id], f"bus down: {reason}")
        cap = min(RECONNECT_MAX_S, UNIT_BACKOFF_FIRST_S * 2 ** (self._connect_failures - 1))
        await asyncio.sleep(random.uniform(0, cap))
        return False

    def _log_trouble(self, message: str, *args: Any, exc: bool = False) -> None:
        if self._trouble_logged:
            log.debug(message, *args)
            return
        self._trouble_logged = True
        log.error(message + " (further errors on this bus are logged at DEBUG)", *args,
                  exc_info=exc)  # fmt: skip

    # Transactions

    async def _transact(self, unit: UnitConfig, call: Callable[..., Any], *args: Any, **kw: Any):
        """One request/response on the bus, with the unit's own timeout and the inter-frame gap."""
        client = self._client
        assert client is not None
        client.ctx.comm_params.timeout_connect = unit.timeout_s
        state = self.states[unit.device_id]
        started = time.perf_counter()
        self.stats.requests += 1
        state.requests += 1
        try:
            response = await call(*args, device_id=unit.unit_id, **kw)
        except ConnectionException:
            self.stats.errors += 1
            raise
        except ModbusException as error:
            self.stats.errors += 1
            self.stats.timeouts += 1
            state.errors += 1
            raise TimeoutError(str(error)) from None
        finally:
            self.stats.latency_sum_s += time.perf_counter() - started
            if self._gap_s:
                await asyncio.sleep(self._gap_s)
        if response.isError():
            self.stats.errors += 1
            state.errors += 1
            if response.exception_code in GATEWAY_EXCEPTIONS:
                raise TimeoutError(f"gateway exception {response.exception_code}")
            raise _DeviceException(response.exception_code)
        return response

    async def _read(self, unit: UnitConfig, block: Block) -> list[int] | list[bool]:
        client = self._client
        assert client is not None
        call = {
            "coil": client.read_coils,
            "discrete": client.read_discrete_inputs,
            "holding": client.read_holding_registers,
            "input": client.read_input_registers,
        }[block.table]
        response = await self._transact(unit, call, block.start, count=block.count)
        if block.table in ("coil", "discrete"):
            return list(response.bits[: block.count])
        return list(response.registers)

    async def _poll(self, job: _Job, state: UnitState) -> None:
        unit = job.unit
        self._probe_bad_points(job, state)
        readings: list[Reading] = []
        blocks: list[Block] = []
        done = 0
        try:
            for block in job.blocks:
                blocks += await self._poll_block(unit, state, block, readings)
                done += 1
        except TimeoutError as error:
            job.blocks = blocks + job.blocks[done:]
            await self._unit_failed(unit, state, str(error))
            self._emit(readings)
            return
        except ConnectionException as error:
            self._emit(readings)
            if self._client is not None:
                self._client.close()
            self._log_trouble("bus %s: connection lost (%s)", self.key, error)
            return
        job.blocks = blocks
        self._emit(readings)
        await self._unit_answered(unit, state)

    async def _poll_block(
        self, unit: UnitConfig, state: UnitState, block: Block, out: list[Reading]
    ) -> list[Block]:
        """Read a block into `out`; returns the blocks that replace it in the plan."""
        try:
            values = await self._read(unit, block)
        except _DeviceException as error:
            if error.code in (ILLEGAL_ADDRESS, ILLEGAL_VALUE) and len(block.points) > 1:
                kept = []
                for part in split(block):
                    kept += await self._poll_block(unit, state, part, out)
                return kept
            ts = now_ms()
            for point in block.points:
                out += self._reading(unit, point, None, ts, Quality.DEVICE_EXCEPTION)
            if error.code in (ILLEGAL_ADDRESS, ILLEGAL_VALUE):
                (point,) = block.points
                state.bad_points[point.key] = time.monotonic() + BAD_POINT_RETRY_S
                await self._event(
                    unit, "modbus.point_rejected", "warning",
                    f"{unit.name}: the device rejects {point.key} ({point.table} {point.address}, "
                    f"exception {error.code}); it is left out of polls and probed again later",
                )  # fmt: skip
                return []
            return [block]
        ts = now_ms()
        for point in block.points:
            words = block.slice(point, values)
            value = codec.decode(point, words)
            if isinstance(value, str):
                state.attributes[point.key] = value
                continue
            quality = Quality.GOOD if value is not None else Quality.DEVICE_EXCEPTION
            if value is None or self._should_report(unit, state, point, value):
                out += self._reading(unit, point, value, ts, quality)
        return [block]

    def _probe_bad_points(self, job: _Job, state: UnitState) -> None:
        now = time.monotonic()
        due = [k for k, at in state.bad_points.items() if at <= now]
        for key in due:
            del state.bad_points[key]
            point = next(b.point for b in job.unit.bindings if b.point.key == key)
            if point.interval_s == job.interval_s:
                job.blocks.append(plan([point], job.unit.limits)[0])

    def _should_report(
        self, unit: UnitConfig, state: UnitState, point: ModbusPoint, value: float
    ) -> bool:
        if point.deadband is None:
            return True
        point_id = self._point_id(unit, point)
        last = state.last_reported.get(point_id)
        now = time.monotonic()
        if last is not None and now - last[1] < FORCE_REPORT_S:
            changed = abs(value - last[0]) > point.deadband or (
                point.deadband == 0 and value != last[0]
            )
            if not changed:
                return False
        state.last_reported[point_id] = (value, now)
        return True

    def _point_id(self, unit: UnitConfig, point: ModbusPoint) -> int:
        return self._point_ids[unit.device_id, point.key]

    def _reading(
        self, unit: UnitConfig, point: ModbusPoint, value: float | None, ts: int, quality: Quality
    ) -> list[Reading]:
        return [Reading(self._point_id(unit, point), ts, value, quality)]

    def _emit(self, readings: list[Reading]) -> None:
        if not readings:
            return
        try:
            future = self._store.submit_readings(readings)
        except Exception as error:  # a full backlog: counted and logged, the bus goes on
            self.stats.readings_refused += len(readings)
            self._log_trouble("bus %s: the store refused %d readings: %s", self.key,
                              len(readings), error)  # fmt: skip
            return
        count = len(readings)

        def committed(done: Any) -> None:
            if done.exception() is None:
                self.stats.readings_committed += count
            else:
                self.stats.readings_refused += count

        future.add_done_callback(committed)

    # Unit health

    async def _unit_answered(self, unit: UnitConfig, state: UnitState) -> None:
        state.failures = 0
        state.retry_at = 0.0
        state.last_success_ms = now_ms()
        state.last_error = None
        if state.online is not True:
            if state.online is False:
                log.info("%s (unit %d on %s) answers again", unit.name, unit.unit_id, self.key)
                await self._event(unit, "device.online", "info", f"{unit.name} answers again")
            state.online = True

    async def _unit_failed(self, unit: UnitConfig, state: UnitState, reason: str) -> None:
        state.failures += 1
        state.last_error = reason
        cap = min(UNIT_BACKOFF_MAX_S, UNIT_BACKOFF_FIRST_S * 2 ** (state.failures - 1))
        state.retry_at = time.monotonic() + random.uniform(cap / 2, cap)
        if state.failures >= OFFLINE_AFTER and state.online is not False:
            state.online = False
            log.warning("%s (unit %d on %s) is offline: %s", unit.name, unit.unit_id, self.key,
                        reason)  # fmt: skip
            ts = now_ms()
            self._emit(
                [Reading(b.point_id, ts, None, Quality.COMM_ERROR) for b in unit.bindings
                 if b.point.data_type != "string"]
            )  # fmt: skip
            await self._event(
                unit, "device.offline", "warning", f"{unit.name} does not answer: {reason}"
            )

    async def _event(
        self,
        unit: UnitConfig,
        type_: str,
        severity: str,
        message: str,
        data: dict[str, Any] | None = None,
    ) -> None:
        try:
            await asyncio.to_thread(
                self._store.record_event, unit.org_id, type_, severity, message, unit.device_id,
                data,
            )  # fmt: skip
        except Exception as error:  # an event lost to a full disk must not stop the bus
            log.warning("event %s for %s not recorded: %s", type_, unit.name, error)

    # Writes

    async def _perform_write(self, write: _Write) -> None:
        client = self._client
        assert client is not None
        unit, point = write.unit, write.point
        try:
            if point.table == "coil":
                await self._transact(unit, client.write_coil, point.address, bool(write.words[0]))
            elif len(write.words) == 1:
                await self._transact(unit, client.write_register, point.address, write.words[0])
            else:
                await self._transact(unit, client.write_registers, point.address, write.words)
            block = plan([point], Limits(one_per_request=True))[0]
            read_back = await self._read(unit, block)
        except _DeviceException as error:
            write.future.set_exception(WriteFailed(f"the device refused the write ({error})"))
            return
        except (TimeoutError, ConnectionException) as error:
            write.future.set_exception(WriteFailed(f"no answer from {unit.name}: {error}"))
            return
        write.future.set_result([int(w) for w in read_back])

    def samples(self) -> list[Sample]:
        """Per-bus and per-device samples for /metrics."""
        return bus_samples(str(self.key), self.stats, self.units.values(), self.states)
