"""What a running gateway hands its web app and agents: settings, store, supervisor."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from edge.models import Device, now_ms
from edge.settings import Settings
from edge.stats import StatsSource
from edge.store import Store
from edge.supervisor import Supervisor

# (store, org_id, body) -> the stored device; ValueError names what is wrong with the body.
AddDevice = Callable[[Store, str, dict[str, Any]], Device]


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
    # Drivers that know whether their devices answer: id -> "online"/"offline", or None.
    status_sources: list[Callable[[str], str | None]] = field(default_factory=list)

    def device_status(self, device: Device) -> str:
        """online, offline, or provisioning (not heard from yet)."""
        if not device.enabled or device.deleted_at is not None:
            return "offline"
        for source in self.status_sources:
            status = source(device.id)
            if status is not None:
                return status
        return "provisioning"
