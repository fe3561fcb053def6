"""Plausible values for a point: a meter's counters rise, its voltages hover near nominal.

A `Signal` takes its behaviour from the point's unit, key and type and steps it
forward in time; the register image decides how the value is carried.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass
from typing import Final, Literal

from drivers.modbus.points import ModbusPoint

Kind = Literal["hold", "counter", "walk", "flag"]

# Walk shapes in the unit's base (unprefixed) unit:
# (mean, standard deviation, time constant in s, lowest, highest).
SHAPES: Final = {
    "voltage": (230.0, 1.5, 60.0, 200.0, 260.0),
    "line_voltage": (400.0, 2.5, 60.0, 350.0, 450.0),
    "frequency": (50.0, 0.03, 30.0, 49.8, 50.2),
    "current": (8.0, 3.0, 20.0, 0.0, 63.0),
    "power": (1_800.0, 700.0, 20.0, 0.0, 15_000.0),
    "reactive": (250.0, 150.0, 30.0, -5_000.0, 5_000.0),
    "power_factor": (0.95, 0.02, 60.0, 0.5, 1.0),
    "distortion": (3.0, 0.8, 60.0, 0.0, 20.0),
    "temperature": (24.0, 2.0, 300.0, -20.0, 80.0),
    "flow": (12.0, 3.0, 60.0, 0.0, 100.0),
    "percent": (50.0, 12.0, 120.0, 0.0, 100.0),
    "angle": (20.0, 4.0, 60.0, -180.0, 180.0),
    "other": (100.0, 15.0, 60.0, 0.0, 1_000.0),
}
# Base units (lower case) and the walk shape each implies.
UNIT_SHAPES: Final = {
    "v": "voltage", "hz": "frequency", "a": "current", "w": "power", "va": "power",
    "var": "reactive", "%": "percent", "°c": "temperature", "degc": "temperature",
    "m³/h": "flow", "m3/h": "flow", "l/min": "flow", "l/s": "flow", "°": "angle", "deg": "angle",
}  # fmt: skip
# SI prefixes a unit may carry before its base unit (mega before milli: case matters).
PREFIXES: Final = {"G": 1e9, "M": 1e6, "k": 1e3, "m": 1e-3}
# Energy base units; their counters start at START_WH and rise with a load of LOAD_W.
ENERGY_UNITS: Final = frozenset({"wh", "varh", "vah"})
START_WH: Final = (1e6, 2e7)
LOAD_W: Final = (500.0, 5_000.0)
# Other counters by base unit: (lowest start, highest start, average rise per second).
COUNTERS: Final = {
    "s": (1e5, 5e7, 0.7), "min": (2e3, 8e5, 0.7 / 60), "h": (30.0, 1.5e4, 0.7 / 3600),
    "m³": (1e3, 1e5, 12 / 3600), "m3": (1e3, 1e5, 12 / 3600), "l": (1e6, 1e8, 12 / 3.6),
    "": (100.0, 5_000.0, 1 / 300),
}  # fmt: skip
COUNTER_WORDS: Final = frozenset({"count", "counter", "starts", "hours", "runtime"})
# Line-to-line voltages by key ("l1_l2_voltage", "system_voltage_ll").
LINE_TO_LINE: Final = re.compile(r"l[123]_?l[123]|line_to_line|phase_to_phase|_ll\b")
# Flips per second of a status bit: roughly one every ten minutes.
FLIP_PER_S: Final = 1 / 600
# Words in keys of registers that describe the device rather than measure; these hold still.
STATIC_WORDS: Final = frozenset({
    "status", "state", "mode", "error", "errors", "alarm", "alarms", "fault", "faults",
    "code", "version", "model", "serial", "id", "address", "baud", "parity", "sequence",
})  # fmt: skip
# Words of flags that are normally on.
ON_WORDS: Final = frozenset({"healthy", "ok", "ready", "enabled", "available"})
# Words of recorded peaks, which hold above the walk's mean.
PEAK_WORDS: Final = frozenset({"max", "peak"})


@dataclass
class Signal:
    """One point's value and how it moves: held, counting up, wandering, or flipping rarely."""

    kind: Kind
    value: float | str
    mean: float = 0.0
    sigma: float = 0.0
    tau_s: float = 60.0
    low: float = -math.inf
    high: float = math.inf
    rate: float = 0.0  # per second: a counter's average rise, a flag's flips

    def step(self, dt_s: float, rng: random.Random) -> None:
        """Advance the value by `dt_s` seconds."""
        if isinstance(self.value, str) or dt_s <= 0:
            return
        if self.kind == "counter":
            self.value += self.rate * dt_s * rng.uniform(0.5, 1.5)
        elif self.kind == "walk":
            # Mean-reverting random walk: smooth, and near its mean for any tick length.
            decay = math.exp(-dt_s / self.tau_s)
            noise = self.sigma * math.sqrt(1 - decay * decay) * rng.gauss(0.0, 1.0)
            moved = self.mean + (self.value - self.mean) * decay + noise
            self.value = min(max(moved, self.low), self.high)
        elif self.kind == "flag" and rng.random() < 1 - math.exp(-dt_s * self.rate):
            self.value = 0.0 if self.value else 1.0


def signal_for(point: ModbusPoint, rng: random.Random) -> Signal:
    """A plausible signal for the point, from its unit, key, type and limits."""
    key = point.key.lower()
    words = set(re.split(r"[_.\-]", key))
    moving: Kind = "hold" if point.writable else "walk"
    if point.data_type == "string":
        return Signal("hold", _text(point, words, rng))
    if point.data_type in ("bool", "bit"):
        chance = 0.95 if words & ON_WORDS else 0.05 if words & STATIC_WORDS else 0.3
        start = 1.0 if rng.random() < chance else 0.0
        return Signal("hold" if point.writable else "flag", start, rate=FLIP_PER_S)
    base, factor = _split_unit(point.unit or "")
    counting = "hold" if point.writable else "counter"
    if base in ENERGY_UNITS or "energy" in key:
        if base not in ENERGY_UNITS:
            factor = 1e3  # an energy register without a unit is most likely in kWh
        start = rng.uniform(*START_WH) / factor
        return Signal(counting, start, rate=rng.uniform(*LOAD_W) / 3600 / factor)
    if words & COUNTER_WORDS or "run_time" in key or (base in COUNTERS and base):
        low, high, rate = COUNTERS.get(base, COUNTERS[""])
        return Signal(counting, rng.uniform(low, high) / factor, rate=rate / factor)
    if words & STATIC_WORDS and not point.writable:
        return Signal("hold", point.min if point.min is not None else 0.0)
    mean, sigma, tau_s, low, high = SHAPES[_shape(key, words, base)]
    mean, sigma, low, high = mean / factor, sigma / factor, low / factor, high / factor
    if point.min is not None:
        low = max(low, point.min)
    if point.max is not None:
        high = min(high, point.max)
    if point.min is not None and point.max is not None and not low <= mean <= high:
        # The point's own limits say more than the guess from its unit.
        low, high = sorted((point.min, point.max))
        mean, sigma = (low + high) / 2, (high - low) / 8
    low, high = min(low, high), max(low, high)
    mean = min(max(mean, low), high)
    if words & PEAK_WORDS:
        return Signal("hold", min(mean + 2 * sigma, high))
    start = min(max(rng.gauss(mean, sigma), low), high)
    return Signal(moving, start, mean=mean, sigma=sigma, tau_s=tau_s, low=low, high=high)


def _shape(key: str, words: set[str], base: str) -> str:
    if "pf" in words or "power_factor" in key or "cos_phi" in key:
        return "power_factor"
    if "thd" in words or "distortion" in key:
        return "distortion"
    if "freq" in key:
        return "frequency"
    shape = UNIT_SHAPES.get(base) or next(
        (word for word in ("voltage", "current", "flow", "reactive") if word in key), None
    )
    if shape is None and ("power" in key or "demand" in key):
        shape = "power"
    if shape is None and "temp" in key:
        shape = "temperature"
    if shape == "voltage" and LINE_TO_LINE.search(key):
        return "line_voltage"
    return shape or "other"


def _split_unit(unit: str) -> tuple[str, float]:
    """The unit's base (lower case) and how many base units one of it is: "kWh" -> ("wh", 1e3)."""
    unit = unit.strip()
    lowered = unit.lower()
    known = UNIT_SHAPES.keys() | ENERGY_UNITS | COUNTERS.keys()
    if lowered in known:
        return lowered, 1.0
    if unit[:1] in PREFIXES and lowered[1:] in known:
        return lowered[1:], PREFIXES[unit[:1]]
    return lowered, 1.0


def _text(point: ModbusPoint, words: set[str], rng: random.Random) -> str:
    room = point.length * 2
    text = str(rng.randrange(10**7, 10**8)) if "serial" in words else f"SIM {point.key}"
    return text[:room].rstrip()
