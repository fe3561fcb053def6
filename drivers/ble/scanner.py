"""One scanner per adapter: matchers with callbacks, the latest advert per address, a watchdog.

Drivers never open scanners of their own: they register a `Matcher` and a
callback with the adapter's `AdapterScanner`. Scanning is passive by default
(on BlueZ that needs >= 5.56 with Experimental, and bleak's `or_patterns`),
and active for a while on demand (to hear scan responses, such as names,
while discovering). A radio that has gone deaf (a wedged adapter, a daemon
that lost its scan) is restarted when no advert arrived for `watchdog_s`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final, Literal

from bleak import BleakScanner
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData, AdvertisementDataCallback

from drivers.ble.adverts import Advert, from_bleak

log = logging.getLogger(__name__)

Mode = Literal["active", "passive"]
# (detection callback, mode) -> a bleak scanner on this adapter, not yet started.
ScannerFactory = Callable[[AdvertisementDataCallback, Mode], BleakScanner]

# A radio that hears nothing for this long is restarted (an empty room is quieter than this
# only if no sensor at all is in range, and then a restart costs nothing).
WATCHDOG_S: Final = 90.0
# A scanner that fails to start is retried after 1 s, doubling up to this cap, with jitter.
RESTART_MAX_S: Final = 60.0
# A scanner that does not stop within this (a radio gone away) is left behind.
STOP_TIMEOUT_S: Final = 2.0
# Addresses kept in `latest` at most; the quietest are forgotten first.
LATEST_MAX: Final = 2048


@dataclass(frozen=True, slots=True)
class Matcher:
    """Which adverts a callback wants; a None field does not narrow."""

    address: str | None = None
    service_data_uuid: str | None = None
    manufacturer_id: int | None = None

    def matches(self, advert: Advert) -> bool:
        if self.address is not None and advert.address != self.address.upper():
            return False
        if self.service_data_uuid is not None and self.service_data_uuid not in advert.service_data:
            return False
        return self.manufacturer_id is None or self.manufacturer_id in advert.manufacturer_data


class AdapterScanner:
    """Scans on one adapter until cancelled and hands each advert to the matching callbacks."""

    def __init__(
        self,
        adapter: str,
        factory: ScannerFactory,
        *,
        passive: bool = True,
        watchdog_s: float = WATCHDOG_S,
        reset: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.adapter = adapter
        self._factory = factory
        self._passive = passive
        self.watchdog_s = watchdog_s
        # Called after a deaf spell or a failed start: a Bumble radio closes its transport, so
        # the next start reconnects (a virtual controller's process may have restarted).
        self._reset = reset
        self._registrations: dict[object, tuple[Matcher, Callable[[Advert], None]]] = {}
        self.latest: dict[str, Advert] = {}
        # The backend's own device handle per address (BlueZ's carries the D-Bus path that a
        # GATT connection needs).
        self.devices: dict[str, BLEDevice] = {}
        self.last_advert_at: float | None = None
        self.started_at: float | None = None
        self.restarts = 0
        self.adverts = 0
        self.failures = 0
        self.mode: Mode | None = None
        self.last_error: str | None = None
        self._active_until = 0.0
        self._wake = asyncio.Event()
        self._trouble_logged = False

    def register(self, matcher: Matcher, callback: Callable[[Advert], None]) -> Callable[[], None]:
        """Call `callback` with every advert `matcher` accepts; returns the unregister call."""
        token = object()
        self._registrations[token] = (matcher, callback)
        return lambda: self._registrations.pop(token, None)

    def request_active(self, duration_s: float) -> None:
        """Scan actively for `duration_s` (scan requests bring names and scan responses)."""
        self._active_until = max(self._active_until, time.monotonic() + duration_s)
        self._wake.set()

    @property
    def running(self) -> bool:
        return self.mode is not None

    def _wanted_mode(self) -> Mode:
        if not self._passive or time.monotonic() < self._active_until:
            return "active"
        return "passive"

    def _on_detect(self, device: BLEDevice, data: AdvertisementData) -> None:
        connectable = bool(getattr(device.details, "is_connectable", False))
        advert = from_bleak(device, data, self.adapter, connectable)
        self.adverts += 1
        self.last_advert_at = advert.at
        self.latest.pop(advert.address, None)
        self.latest[advert.address] = advert
        self.devices[advert.address] = device
        if len(self.latest) > LATEST_MAX:
            self.devices.pop(self.latest.pop(next(iter(self.latest))).address, None)
        for matcher, callback in list(self._registrations.values()):
            if matcher.matches(advert):
                try:
                    callback(advert)
                except Exception:  # one consumer's bug must not deafen the others
                    log.exception("%s: an advert callback failed", self.adapter)

    async def run(self) -> None:
        """Scan until cancelled: restart when deaf, switch modes on demand, retry failures."""
        while True:
            mode = self._wanted_mode()
            scanner = self._factory(self._on_detect, mode)
            try:
                await scanner.start()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                await self._reset_radio()
                await self._start_failed(mode, error)
                continue
            self._started(mode)
            deaf = False
            try:
                deaf = await self._watch(mode)
            finally:
                self.mode = None
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(scanner.stop(), STOP_TIMEOUT_S)
            if deaf:
                await self._reset_radio()

    async def _reset_radio(self) -> None:
        if self._reset is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._reset(), STOP_TIMEOUT_S)

    def _started(self, mode: Mode) -> None:
        if self.failures:
            log.info("%s: scanning again (%s)", self.adapter, mode)
        self.failures = 0
        self._trouble_logged = False
        self.last_error = None
        self.mode = mode
        self.started_at = time.monotonic()
        log.info("%s: scanning (%s)", self.adapter, mode)

    async def _start_failed(self, mode: Mode, error: Exception) -> None:
        self.failures += 1
        self.last_error = f"{type(error).__name__}: {error}"
        if mode == "passive" and "passive" in str(error).lower():
            # BlueZ without passive support (< 5.56 or no Experimental): scan actively instead.
            log.warning("%s: passive scanning unavailable (%s); scanning actively", self.adapter,
                        error)  # fmt: skip
            self._passive = False
            return
        if self._trouble_logged:
            log.debug("%s: scanner did not start: %s", self.adapter, self.last_error)
        else:
            self._trouble_logged = True
            log.error("%s: scanner did not start: %s (retrying; further failures at DEBUG)",
                      self.adapter, self.last_error)  # fmt: skip
        cap = min(RESTART_MAX_S, 2 ** (self.failures - 1))
        await asyncio.sleep(random.uniform(cap / 2, cap))

    async def _watch(self, mode: Mode) -> bool:
        """Return when the scanner should restart: True if deaf for watchdog_s, False for a mode
        change."""
        while True:
            heard = max(self.started_at or 0.0, self.last_advert_at or 0.0)
            deadline = heard + self.watchdog_s
            now = time.monotonic()
            if now >= deadline:
                self.restarts += 1
                log.warning("%s: no advert for %.0f s; restarting the scanner", self.adapter,
                            now - heard)  # fmt: skip
                return True
            wake_at = deadline
            if mode == "active" and self._passive:
                wake_at = min(wake_at, self._active_until)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), max(0.0, wake_at - now))
            if self._wanted_mode() != mode:
                return False

    def status(self) -> dict[str, Any]:
        """The scanner's state for health pages."""
        now = time.monotonic()
        return {
            "adapter": self.adapter,
            "mode": self.mode,
            "adverts": self.adverts,
            "restarts": self.restarts,
            "last_advert_age_s": None if self.last_advert_at is None else now - self.last_advert_at,
            "last_error": self.last_error,
        }
