"""GATT polling: characteristics of connectable sensors read on a schedule, one link at a time.

Connections go through bleak-retry-connector's `establish_connection`, which
retries the transient failures BlueZ and small controllers are known for.
An adapter holds one GATT connection at a time (a lock per adapter), and a
device is polled no more often than its shortest point interval, however
often a poll is asked for (debounced).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from bleak import BleakClient
from bleak.backends.device import BLEDevice
from bleak.exc import BleakError
from bleak_retry_connector import establish_connection

from drivers.ble.devices import GattRead
from edge.models import Quality, Reading, now_ms

log = logging.getLogger(__name__)

# Connection attempts per poll before the poll counts as failed.
CONNECT_ATTEMPTS: Final = 3
# One poll (connect, read every point, disconnect) may take at most this long.
POLL_TIMEOUT_S: Final = 60.0
# A GATT device not heard yet is looked for this often.
UNHEARD_CHECK_S: Final = 0.5
# Polls asked for within this long of the last one wait until it has passed: one connection
# serves them all.
DEBOUNCE_S: Final = 2.0


@dataclass
class GattTarget:
    """A device's GATT points and when they were last read."""

    device_id: str
    address: str
    name: str
    reads: tuple[tuple[GattRead, int], ...]
    last_poll: float = 0.0
    polls: int = 0
    errors: int = 0
    # Consecutive failed polls (0 once one works).
    failures: int = 0
    last_error: str | None = None

    @property
    def interval_s(self) -> float:
        return min(r.interval_s for r, _ in self.reads)


@dataclass
class GattPoller:
    """Polls the GATT devices of one adapter, one connection at a time."""

    lock: asyncio.Lock
    # BleakClient keyword arguments for this adapter (a backend and radio for Bumble).
    client_kwargs: dict[str, Any]
    emit: Callable[[list[Reading]], None]
    # The scanner's device handle for an address, once it was heard.
    device_of: Callable[[str], BLEDevice | None]
    targets: dict[str, GattTarget] = field(default_factory=dict)
    timeout_s: float = POLL_TIMEOUT_S
    _wake: asyncio.Event = field(default_factory=asyncio.Event)

    def set_targets(self, targets: dict[str, GattTarget]) -> None:
        """Poll these devices from now on."""
        self.targets = targets
        self._wake.set()

    def request(self, device_id: str) -> bool:
        """Ask for a poll now (or DEBOUNCE_S after the last one, so a burst of asks is one poll)."""
        target = self.targets.get(device_id)
        if target is None:
            return False
        # Debounced: a request within DEBOUNCE_S of the last poll is that poll.
        target.last_poll = min(target.last_poll, time.monotonic() - target.interval_s + DEBOUNCE_S)
        self._wake.set()
        return True

    def _due(self, now: float) -> GattTarget | None:
        # A device not heard yet cannot be connected to; it is polled once it advertises.
        due = [t for t in self.targets.values() if now - t.last_poll >= t.interval_s
               and self.device_of(t.address) is not None]  # fmt: skip
        return min(due, key=lambda t: t.last_poll) if due else None

    async def run(self) -> None:
        """Poll every due device until cancelled."""
        while True:
            target = self._due(time.monotonic())
            if target is None:
                now = time.monotonic()
                wait = min((t.last_poll + t.interval_s - now if self.device_of(t.address)
                            else UNHEARD_CHECK_S for t in self.targets.values()),
                           default=3600.0)  # fmt: skip
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), max(wait, 0.05))
                continue
            target.last_poll = time.monotonic()
            await self.poll(target)

    async def poll(self, target: GattTarget) -> list[Reading]:
        """Connect, read each point, disconnect; failures become COMM_ERROR readings."""
        async with self.lock:
            try:
                readings = await asyncio.wait_for(self._read_all(target), self.timeout_s)
            except (BleakError, TimeoutError, OSError) as error:
                target.failures += 1
                target.errors += 1
                target.last_error = f"{type(error).__name__}: {error}"
                if target.failures == 1:
                    log.warning("%s: GATT poll failed: %s", target.name, target.last_error)
                ts = now_ms()
                readings = [Reading(pid, ts, None, Quality.COMM_ERROR) for _, pid in target.reads]
            else:
                if target.failures:
                    log.info("%s: GATT polls work again", target.name)
                target.failures = 0
                target.last_error = None
            target.polls += 1
        self.emit(readings)
        return readings

    async def _read_all(self, target: GattTarget) -> list[Reading]:
        device = self.device_of(target.address)
        if device is None:
            raise BleakError(f"{target.address} has not been heard yet")
        client = await establish_connection(
            BleakClient, device, target.name, max_attempts=CONNECT_ATTEMPTS, **self.client_kwargs
        )
        readings = []
        try:
            for read, point_id in target.reads:
                raw = await client.read_gatt_char(read.characteristic)
                ts = now_ms()
                try:
                    readings.append(Reading(point_id, ts, read.decode(bytes(raw))))
                except ValueError as error:
                    log.warning("%s: %s", target.name, error)
                    readings.append(Reading(point_id, ts, None, Quality.DEVICE_EXCEPTION))
        finally:
            await client.disconnect()
        return readings
