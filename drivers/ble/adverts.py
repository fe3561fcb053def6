"""Adverts as the driver keeps them: one frozen record per report heard, whatever the radio.

Every backend (BlueZ through bleak, Bumble through its bleak backend) ends in
bleak's `AdvertisementData`; this module turns it into an `Advert` and an
`Advert` into the service info the parser libraries read.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from habluetooth import BluetoothServiceInfoBleak


@dataclass(frozen=True, slots=True)
class Advert:
    """One advertising report: who sent it, how loud, and its data."""

    address: str
    rssi: int
    name: str | None = None
    manufacturer_data: dict[int, bytes] = field(default_factory=dict)
    service_data: dict[str, bytes] = field(default_factory=dict)
    service_uuids: tuple[str, ...] = ()
    connectable: bool = False
    # time.monotonic() when heard: intervals are measured on it; ts_ms dates the readings.
    at: float = field(default_factory=time.monotonic)
    ts_ms: int = field(default_factory=lambda: time.time_ns() // 1_000_000)
    adapter: str = ""

    def service_info(self) -> BluetoothServiceInfoBleak:
        """The parser libraries' view of this advert."""
        return BluetoothServiceInfoBleak(
            name=self.name or "",
            address=self.address,
            rssi=self.rssi,
            manufacturer_data=dict(self.manufacturer_data),
            service_data=dict(self.service_data),
            service_uuids=list(self.service_uuids),
            source=self.adapter,
            device=BLEDevice(self.address, self.name, {}),
            advertisement=None,
            connectable=self.connectable,
            time=self.at,
            tx_power=None,
        )


def from_bleak(
    device: BLEDevice, data: AdvertisementData, adapter: str, connectable: bool = False
) -> Advert:
    """An Advert from what a bleak scanner reports."""
    return Advert(
        address=device.address.upper(),
        rssi=data.rssi,
        name=data.local_name or device.name,
        manufacturer_data=dict(data.manufacturer_data),
        service_data={k.lower(): v for k, v in data.service_data.items()},
        service_uuids=tuple(u.lower() for u in data.service_uuids),
        connectable=connectable,
        adapter=adapter,
    )
