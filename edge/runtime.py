"""What a running gateway hands its web app and agents: settings, store, supervisor."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from edge.models import Device, Owner, now_ms
from edge.settings import Settings
from edge.stats import StatsSource
from edge.store import Store
from edge.supervisor import Supervisor

# (store, owner, body) -> the stored device; ValueError names what is wrong with the body.
AddDevice = Callable[[Store, Owner, dict[str, Any]], Device]
# (body as POST /devices takes it) -> what the device answers now, nothing stored: `ok`,
# `latency_ms`, `error` (a sentence, when not ok), `values` (each `key`, `value`, `unit`),
# and `points` (the point definitions found, e.g. by SunSpec discovery, to store with it).
# ValueError names what is wrong with the body.
ProbeDevice = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


class CommandRefused(ValueError):
    """A command the device or its driver cannot take; the message says why."""


class DeviceDriver(Protocol):
    """What the API asks of the driver behind a device."""

    types: frozenset[str]

    def status(self, device_id: str) -> str | None:
        """online or offline once the device has been tried; else None."""
        ...

    def health(self, device_id: str) -> dict[str, Any] | None:
        """Last contact, success rate and last error of a device it serves."""
        ...

    async def command(self, device_id: str, body: dict[str, Any], actor: str) -> dict[str, Any]:
        """Carry out a command (write, refresh_config, ...); CommandRefused if it cannot."""
        ...


class Discovery(Protocol):
    """A driver that hears devices nearby before they are adopted (BLE sensors)."""

    def nearby_sensors(self) -> list[dict[str, Any]]:
        """What is heard nearby, in a stable order (by address)."""
        ...

    def scan(self, seconds: float) -> float:
        """Listen harder (an active scan) for a while; returns the duration."""
        ...


@dataclass(frozen=True, slots=True)
class Runtime:
    """The running gateway's parts, passed down explicitly."""

    settings: Settings
    store: Store
    supervisor: Supervisor
    started_at_ms: int = field(default_factory=now_ms)
    stats_sources: list[StatsSource] = field(default_factory=list)
    # Per device type, how a device of that type is validated and stored (drivers register).
    device_types: dict[str, AddDevice] = field(default_factory=dict)
    drivers: list[DeviceDriver] = field(default_factory=list)
    # The built-in device profiles (register maps) and sensor profiles (decoders) as plain
    # data; drivers provide them.
    profiles: Callable[[], list[dict[str, Any]]] = list
    sensor_profiles: Callable[[], list[dict[str, Any]]] = list
    # Radios that list the sensors they hear nearby, for discovery and adoption.
    discovery: list[Discovery] = field(default_factory=list)
    # Named JSON states for status pages and the admin API (the sync agent's, ...).
    status_sources: dict[str, Callable[[], dict[str, Any]]] = field(default_factory=dict)
    # Per device type, how to try a device before it is stored ("test connection").
    probes: dict[str, ProbeDevice] = field(default_factory=dict)

    def driver_of(self, device: Device) -> DeviceDriver | None:
        """The driver that serves devices of this device's type."""
        return next((d for d in self.drivers if device.type in d.types), None)

    def device_status(self, device: Device) -> str:
        """online, offline, or provisioning (not heard from yet)."""
        if not device.enabled or device.deleted_at is not None:
            return "offline"
        driver = self.driver_of(device)
        status = driver.status(device.id) if driver is not None else None
        return status or "provisioning"
