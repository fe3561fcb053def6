"""What a bus poller knows of its units: their configuration, their health, the bus's counters,
and the errors a write can end in."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from drivers.modbus.planner import Limits
from drivers.modbus.points import ModbusPoint
from edge.stats import Sample


class WriteRefused(ValueError):
    """A write that cannot be made: unknown or read-only point, or a value out of range."""


class WriteFailed(RuntimeError):
    """The device did not take the write (no answer, or an exception reply)."""


@dataclass(frozen=True, slots=True)
class Binding:
    """A point of a unit and the store point its readings go to."""

    point: ModbusPoint
    point_id: int


@dataclass(frozen=True, slots=True)
class UnitConfig:
    """A device on this bus, as the driver configured it."""

    device_id: str
    org_id: str
    name: str
    unit_id: int
    timeout_s: float
    limits: Limits
    bindings: tuple[Binding, ...]


@dataclass
class UnitState:
    """What the poller knows of a unit's health; read by /metrics and the API's health."""

    online: bool | None = None
    failures: int = 0
    retry_at: float = 0.0
    last_success_ms: int | None = None
    last_error: str | None = None
    requests: int = 0
    errors: int = 0
    bad_points: dict[str, float] = field(default_factory=dict)
    last_reported: dict[int, tuple[float, float]] = field(default_factory=dict)
    attributes: dict[str, str] = field(default_factory=dict)


@dataclass
class BusStats:
    """Counters of one bus for /metrics."""

    requests: int = 0
    errors: int = 0
    timeouts: int = 0
    latency_sum_s: float = 0.0
    connects: int = 0
    overruns: int = 0
    readings_committed: int = 0
    readings_refused: int = 0


def bus_samples(
    key: str, stats: BusStats, units: Iterable[UnitConfig], states: dict[str, UnitState]
) -> list[Sample]:
    """Per-bus and per-device samples for /metrics."""
    bus = {"bus": key}
    s = stats
    out = [
        Sample("edge_modbus_requests", "Modbus requests sent.", "counter", s.requests, bus),
        Sample("edge_modbus_errors", "Modbus requests that failed.", "counter", s.errors, bus),
        Sample("edge_modbus_timeouts", "Modbus requests unanswered.", "counter", s.timeouts,
               bus),
        Sample("edge_modbus_latency_seconds_total", "Time spent in Modbus requests.",
               "counter", s.latency_sum_s, bus),
        Sample("edge_modbus_overruns", "Polls that ran over a full interval late.",
               "counter", s.overruns, bus),
        Sample("edge_modbus_readings_committed", "Readings from this bus committed.",
               "counter", s.readings_committed, bus),
    ]  # fmt: skip
    for unit in units:
        state = states[unit.device_id]
        labels = {"bus": key, "device": unit.device_id}
        out.append(Sample("edge_modbus_device_online", "1 while the device answers.",
                          "gauge", 1.0 if state.online else 0.0, labels))  # fmt: skip
        if state.last_success_ms is not None:
            out.append(Sample("edge_modbus_device_last_success_seconds",
                              "When the device last answered (Unix time).", "gauge",
                              state.last_success_ms / 1000, labels))  # fmt: skip
    return out
