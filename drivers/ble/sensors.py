"""What the driver knows of each sensor: nearby ones (discovery) and adopted ones (readings)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from drivers.ble.adverts import Advert
from drivers.ble.availability import Availability
from drivers.ble.devices import BleSetup
from drivers.ble.families import Decoded, Decoder

# A stranger no family claims is asked again after this long (a sensor may start with an
# advert no parser knows, such as a bare name).
REDETECT_S: Final = 60.0
# Addresses remembered nearby at most (phones rotate random addresses); the quietest go first.
NEARBY_MAX: Final = 1024


@dataclass
class Nearby:
    """A sensor heard nearby: its family, signal and last values, adopted or not."""

    address: str
    family: str | None
    detected_at: float
    name: str | None = None
    rssi: int = 0
    connectable: bool = False
    last_seen_ms: int = 0
    model: str | None = None
    locked: bool = False
    values: dict[str, tuple[float, str | None]] = field(default_factory=dict)
    decoder: Decoder | None = None

    def heard(self, advert: Advert, decoded: Decoded | None) -> None:
        self.name = advert.name or self.name
        self.rssi = advert.rssi
        self.connectable = self.connectable or advert.connectable
        self.last_seen_ms = advert.ts_ms
        if decoded is not None:
            self.model = decoded.model or self.model
            self.locked = decoded.locked
            for m in decoded.measurements:
                self.values[m.key] = (m.value, m.unit)

    def as_data(self, device_id: str | None) -> dict[str, Any]:
        return {
            "address": self.address,
            "name": self.name,
            "family": self.family,
            "model": self.model,
            "rssi": self.rssi,
            "connectable": self.connectable,
            "encrypted": self.locked,
            "last_seen_ms": self.last_seen_ms,
            "values": {k: {"value": v, "unit": u} for k, (v, u) in sorted(self.values.items())},
            "device_id": device_id,
        }


@dataclass
class Sensor:
    """An adopted sensor: its setup, its parser, its availability and counters."""

    setup: BleSetup
    decoder: Decoder
    availability: Availability
    adverts: int = 0
    rssi: int | None = None
    model: str | None = None
    locked: bool = False
    last_contact_ms: int | None = None
    # point id -> monotonic time of the last stored reading (one per point interval).
    stored_at: dict[int, float] = field(default_factory=dict)
    intervals: dict[int, float] = field(default_factory=dict)

    @property
    def device_id(self) -> str:
        return self.setup.device.id

    def due(self, point_id: int, now: float) -> bool:
        """True if this point's interval has passed since its last stored reading."""
        last = self.stored_at.get(point_id)
        if last is not None and now - last < self.intervals.get(point_id, 0.0):
            return False
        self.stored_at[point_id] = now
        return True
