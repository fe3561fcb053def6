"""The simulator: units serving their profiles' register maps with moving values and faults.

Each unit's values live in its register image, written through the codec, so what
a correct client decodes is what `value` reports. While a server runs, a ticker
moves the values every half second so a demo's data is alive.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Final

from pymodbus.framer import FramerType

from drivers.modbus import profiles
from drivers.modbus.simulator.context import UnitsContext
from drivers.modbus.simulator.faults import Faults
from drivers.modbus.simulator.image import RegisterImage, representable
from drivers.modbus.simulator.servers import SerialServer, TcpServer
from drivers.modbus.simulator.signals import Signal, signal_for

# Seconds between value updates while serving.
TICK_S: Final = 0.5
# Unit ids a Modbus device may answer to (0 is broadcast, 248-255 are reserved).
UNIT_IDS: Final = range(1, 248)
FRAMERS: Final = {"socket": FramerType.SOCKET, "rtu": FramerType.RTU}


@dataclass(frozen=True)
class UnitSpec:
    """One simulated device: the unit id it answers to and the profile it serves."""

    unit_id: int
    profile: str


class Simulator:
    """Units on one simulated bus, served over TCP or serial while their values move."""

    def __init__(self, units: list[UnitSpec], faults: Faults | None = None, seed: int = 0):
        self.faults = faults if faults is not None else Faults()
        self._rng = random.Random(seed)
        self._images: dict[int, RegisterImage] = {}
        self._signals: dict[int, dict[str, Signal]] = {}
        for spec in units:
            if spec.unit_id not in UNIT_IDS:
                raise ValueError(f"unit id {spec.unit_id} is outside 1-247")
            if spec.unit_id in self._images:
                raise ValueError(f"unit id {spec.unit_id} is given twice")
            profile = profiles.load(spec.profile)
            image = RegisterImage(profile.points)
            signals = {point.key: signal_for(point, self._rng) for point in profile.points}
            self._images[spec.unit_id] = image
            self._signals[spec.unit_id] = signals
            for key, signal in signals.items():
                self._show(image, key, signal)
        self._context = UnitsContext(self._images, lambda: self.faults)
        self._started = asyncio.Event()
        self._port: int | None = None
        self._serving = 0
        self._ticker: asyncio.Task[None] | None = None

    @property
    def listening_port(self) -> int:
        """The TCP port the latest TCP server listens on (the chosen one when asked for 0)."""
        if self._port is None:
            raise RuntimeError("not listening on TCP")
        return self._port

    @property
    def started(self) -> asyncio.Event:
        """Set once a server listens."""
        return self._started

    async def wait_started(self) -> None:
        """Return once a server listens."""
        await self._started.wait()

    def value(self, unit_id: int, key: str) -> float | str:
        """The point's current engineering value, as a correct client decodes it."""
        image = self._images[unit_id]
        decoded = image.get(image.points[key])
        return math.nan if decoded is None else decoded

    def set_value(self, unit_id: int, key: str, value: float | str | bool) -> None:
        """Write a value through the codec into the point's registers; it moves on from there."""
        image = self._images[unit_id]
        image.put(image.points[key], value)
        signal = self._signals[unit_id][key]
        signal.value = value if isinstance(value, str) else float(value)

    def tick(self, dt_s: float) -> None:
        """Move every point's value on by `dt_s` seconds; held points (and writable ones) stay."""
        for unit_id, signals in self._signals.items():
            image = self._images[unit_id]
            for key, signal in signals.items():
                if signal.kind != "hold":
                    signal.step(dt_s, self._rng)
                    self._show(image, key, signal)

    async def serve_tcp(self, host: str, port: int, *, framer: str = "socket") -> None:
        """Serve Modbus TCP (or RTU framing over TCP with framer "rtu") until cancelled."""
        if framer not in FRAMERS:
            raise ValueError(f"framer must be one of {', '.join(FRAMERS)}, not {framer!r}")
        server = TcpServer(
            self._context, lambda: self.faults, address=(host, port), framer=FRAMERS[framer]
        )
        async with self._running(server, f"tcp://{host}:{port}"):
            self._port = server.port()
            self._started.set()
            await asyncio.Future()  # until cancelled

    async def serve_rtu(self, port_path: str, baudrate: int = 19200) -> None:
        """Serve Modbus RTU on a serial port or pty until cancelled."""
        server = SerialServer(
            self._context,
            lambda: self.faults,
            port=port_path,
            baudrate=baudrate,
            framer=FramerType.RTU,
        )
        async with self._running(server, f"serial:{port_path}"):
            self._started.set()
            await asyncio.Future()  # until cancelled

    @contextlib.asynccontextmanager
    async def _running(self, server: TcpServer | SerialServer, where: str) -> AsyncIterator[None]:
        try:
            await server.serve_forever(background=True)
        except RuntimeError:
            await server.stop()
            raise OSError(f"cannot listen on {where}") from None
        self._serving += 1
        if self._ticker is None:
            self._ticker = asyncio.get_running_loop().create_task(self._tick_forever())
        try:
            yield
        finally:
            self._serving -= 1
            await server.stop()
            if not self._serving and self._ticker is not None:
                self._ticker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._ticker
                self._ticker = None
            if isinstance(server, TcpServer):
                self._port = None

    async def _tick_forever(self) -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(TICK_S)
            now = time.monotonic()
            self.tick(now - last)
            last = now

    def _show(self, image: RegisterImage, key: str, signal: Signal) -> None:
        """Write the signal's value into the registers, as near as the point can carry it."""
        point = image.points[key]
        value = signal.value
        with contextlib.suppress(ValueError):
            image.put(point, value if isinstance(value, str) else representable(point, value))
