"""The synthetic source: one device of N points with smooth, plausible signals at a fixed rate."""

from __future__ import annotations

import asyncio
import math
import random
from dataclasses import dataclass
from typing import Final

from edge.models import Device, Point, Reading, now_ms
from edge.store import Store

DEVICE_NAME: Final = "Synthetic generator"
# Signal shapes cycled over the points: (key prefix, unit, base, amplitude, period in s).
SHAPES: Final = (
    ("power", "W", 1_500.0, 600.0, 300.0),
    ("voltage", "V", 230.0, 4.0, 120.0),
    ("temperature", "°C", 21.0, 3.0, 900.0),
    ("flow", "m³/h", 12.0, 5.0, 60.0),
)


@dataclass(frozen=True, slots=True)
class _Signal:
    point_id: int
    base: float
    amplitude: float
    period_s: float
    phase: float


class SyntheticSource:
    """Creates its device and points on first use, then appends one reading per point per tick."""

    def __init__(self, store: Store, org_id: str, points: int = 100, interval_s: float = 1.0):
        self._store = store
        self._org_id = org_id
        self._count = points
        self._interval_s = interval_s
        self._signals: list[_Signal] = []
        self.ticks = 0

    def _ensure_points(self) -> list[_Signal]:
        store, org = self._store, self._org_id
        device = next((d for d in store.devices(org) if d.name == DEVICE_NAME), None)
        if device is None:
            device = store.create_device(Device(id="", org_id=org, name=DEVICE_NAME, type="http"))
        existing = {p.key: p for p in store.points(org, device.id)}
        wanted = []
        for i in range(self._count):
            prefix, unit, *_ = SHAPES[i % len(SHAPES)]
            key = f"{prefix}_{i:03d}"
            if key not in existing:
                wanted.append(Point(0, "", org, device.id, key, unit, "float64", self._interval_s))
        for point in store.create_points(org, wanted):
            existing[point.key] = point
        rng = random.Random(0)
        signals = []
        for i in range(self._count):
            prefix, _, base, amplitude, period = SHAPES[i % len(SHAPES)]
            point = existing[f"{prefix}_{i:03d}"]
            signals.append(_Signal(point.id, base, amplitude, period, rng.uniform(0, math.tau)))
        return signals

    def readings(self, ts_ms: int) -> list[Reading]:
        """One reading per point at `ts_ms`."""
        t = ts_ms / 1000
        return [
            Reading(
                s.point_id,
                ts_ms,
                round(s.base + s.amplitude * math.sin(math.tau * t / s.period_s + s.phase), 3),
            )
            for s in self._signals
        ]

    async def run(self) -> None:
        """Append a reading per point every interval, aligned to the wall clock, until cancelled."""
        if not self._signals:
            self._signals = await asyncio.to_thread(self._ensure_points)
        step_ms = int(self._interval_s * 1000)
        while True:
            ts = now_ms() // step_ms * step_ms
            await self._store.append_readings_async(self.readings(ts))
            self.ticks += 1
            await asyncio.sleep((ts + step_ms - now_ms()) / 1000)
