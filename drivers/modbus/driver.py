"""The Modbus driver: one poller per physical bus for every enabled Modbus device in the store."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from typing import Any, Final

from drivers.modbus.bus import TRANSPORTS, BusKey, bus_key, limits
from drivers.modbus.devices import DeviceSetup, setup
from drivers.modbus.poller import BusPoller
from drivers.modbus.units import UnitConfig, WriteFailed, WriteRefused
from edge.runtime import CommandRefused
from edge.stats import Sample
from edge.store import Store
from edge.tasks import cancel_and_wait

log = logging.getLogger(__name__)

# How often the store is checked for added, changed or removed Modbus devices.
RELOAD_CHECK_S: Final = 5.0


class ModbusDriver:
    """Builds the pollers from the store and runs them until cancelled."""

    types = frozenset(TRANSPORTS)

    def __init__(self, store: Store, org_id: str) -> None:
        self._store = store
        self._org_id = org_id
        self._reload = asyncio.Event()
        self.pollers: list[BusPoller] = []

    def _configure(self) -> list[BusPoller]:
        buses: dict[BusKey, list[DeviceSetup]] = {}
        for device in self._store.devices(self._org_id):
            if device.type not in TRANSPORTS or not device.enabled:
                continue
            try:
                found = setup(self._store, device)
            except ValueError as error:
                message = f"{device.name} is not polled: {error}"
                log.error(message)
                self._store.record_event(
                    self._org_id, "device.config_error", "warning", message, device.id
                )
                continue
            buses.setdefault(bus_key(device.type, found.connection), []).append(found)
        pollers = []
        for key, setups in buses.items():
            first = setups[0]
            units = [
                UnitConfig(
                    device_id=s.device.id,
                    org_id=s.device.org_id,
                    name=s.device.name,
                    unit_id=s.connection.unit_id,
                    timeout_s=s.connection.timeout_s,
                    limits=limits(key.transport, s.connection, s.profile_max_block),
                    bindings=s.bindings,
                )
                for s in setups
            ]
            pollers.append(BusPoller(key, key.transport, first.connection, units, self._store))
        return pollers

    def _fingerprint(self) -> frozenset[tuple[str, int]]:
        return frozenset(
            (d.id, d.version) for d in self._store.devices(self._org_id) if d.type in TRANSPORTS
        )

    async def run(self) -> None:
        """Poll every bus until cancelled; rebuild the pollers when Modbus devices change."""
        while True:
            seen = await asyncio.to_thread(self._fingerprint)
            self.pollers = await asyncio.to_thread(self._configure)
            log.info(
                "modbus: polling %d device(s) on %d bus(es)",
                sum(len(p.units) for p in self.pollers),
                len(self.pollers),
            )
            tasks = [
                asyncio.create_task(poller.run(), name=f"modbus:{poller.key}")
                for poller in self.pollers
            ]
            try:
                self._reload.clear()
                while await asyncio.to_thread(self._fingerprint) == seen:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._reload.wait(), RELOAD_CHECK_S)
                    if self._reload.is_set():
                        break
            finally:
                for task in tasks:
                    await cancel_and_wait(task)

    async def write(
        self, device_id: str, key: str, value: Any, actor: str = "gateway"
    ) -> tuple[Any, bool]:
        """Write a point of a polled device, read it back and record an audit event."""
        for poller in self.pollers:
            if device_id in poller.units:
                return await poller.write(device_id, key, value, actor)
        raise WriteRefused(f"device {device_id} is not a polled Modbus device")

    async def command(self, device_id: str, body: dict[str, Any], actor: str) -> dict[str, Any]:
        """`write` a point (read back and audited) or `refresh_config` (rebuild the pollers)."""
        name = body.get("command")
        if name == "write":
            if not isinstance(body.get("point"), str) or "value" not in body:
                raise CommandRefused("write needs point and value")
            try:
                read_back, confirmed = await self.write(device_id, body["point"], body["value"],
                                                        actor)  # fmt: skip
            except (WriteRefused, WriteFailed) as error:
                raise CommandRefused(str(error)) from None
            return {"read_back": read_back, "confirmed": confirmed}
        if name == "refresh_config":
            self._reload.set()
            await asyncio.to_thread(
                self._store.record_event, self._org_id, "device.command", "info",
                f"{actor} asked to reload the Modbus configuration", device_id,
                {"actor": actor, "command": name},
            )  # fmt: skip
            return {"reloading": True}
        raise CommandRefused(f"Modbus devices take write and refresh_config, not {name!r}")

    def health(self, device_id: str) -> dict[str, Any] | None:
        """Last contact, poll success rate and last error of a polled device."""
        for poller in self.pollers:
            state = poller.states.get(device_id)
            if state is not None:
                rate = 1 - state.errors / state.requests if state.requests else None
                bus = poller.stats
                latency = bus.latency_sum_s / bus.requests * 1000 if bus.requests else None
                return {
                    "last_contact_ms": state.last_success_ms,
                    "poll_success_rate": rate,
                    "requests": state.requests,
                    "errors": state.errors,
                    "last_error": state.last_error,
                    "rejected_points": sorted(state.bad_points),
                    "bus": str(poller.key),
                    # The bus's mean: a unit's requests share its connection and queue.
                    "latency_ms": None if latency is None else round(latency, 2),
                    # Text points (model, serial number) are kept here rather than as readings.
                    "attributes": dict(state.attributes),
                }
        return None

    def status(self, device_id: str) -> str | None:
        """online or offline for a polled device that has been tried; else None."""
        for poller in self.pollers:
            state = poller.states.get(device_id)
            if state is not None and state.online is not None:
                return "online" if state.online else "offline"
        return None

    def samples(self) -> Iterable[Sample]:
        """Every bus's samples."""
        for poller in self.pollers:
            yield from poller.samples()
