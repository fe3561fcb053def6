"""The demo's BLE sensors: virtual BTHome, Ruuvi and Govee sensors on a Bumble link, adopted.

`edge demo` shows BLE data with no Bluetooth hardware: the sensors are Bumble
devices with emulated controllers on an in-process virtual link, and the
gateway's radio is one more controller on the same link, so every advert is
a real HCI advertising report that the scanner, the parsers and the store
handle exactly as they would a real sensor's.
"""

from __future__ import annotations

import logging
import secrets
from typing import Final

import msgspec

from drivers.ble.devices import add_device, adopted
from drivers.ble.driver import BleDriver
from drivers.ble.families import family
from drivers.ble.simulator import DEMO_SENSORS, VirtualField
from drivers.ble.transports import LOCAL_PREFIX, forget_link, local_link
from edge.settings import BleSettings
from edge.store import Store

log = logging.getLogger(__name__)

# Each demo gateway gets its own link (a process may run more than one, as the tests do).
LINK_PREFIX: Final = "demo-"
# New values every few seconds, so the demo's charts move.
UPDATE_S: Final = 3.0
# Demo points store a reading this often (a real installation keeps the 60 s default).
DEMO_INTERVAL_S: Final = 5.0


class BleDemo:
    """Owns the virtual sensors; `prepare` adopts them into the store."""

    def __init__(self, store: Store, org_id: str) -> None:
        self._store = store
        self._org_id = org_id
        self.link = LINK_PREFIX + secrets.token_hex(4)
        self.field = VirtualField(local_link(self.link), DEMO_SENSORS, update_s=UPDATE_S)

    def settings(self, base: BleSettings) -> BleSettings:
        """The gateway's BLE settings with its radio on the demo link."""
        return msgspec.structs.replace(
            base, enabled=True, transport="bumble-virtual", adapter=LOCAL_PREFIX + self.link
        )

    def prepare(self) -> None:
        """Adopt every demo sensor that is not in the store yet."""
        for spec in DEMO_SENSORS:
            if adopted(self._store, self._org_id, spec.address) is not None:
                continue
            points = [{"key": k, "unit": u, "interval_s": DEMO_INTERVAL_S}
                      for k, u in family(spec.family).measurements]  # fmt: skip
            add_device(self._store, self._org_id, name=spec.name, points=points,
                       connection={"address": spec.address, "family": spec.family})  # fmt: skip

    async def run(self) -> None:
        """Advertise until cancelled."""
        try:
            await self.field.start()
            log.info("demo: %d virtual BLE sensors advertising", len(DEMO_SENSORS))
            await self.field.run()
        finally:
            forget_link(self.link)


def driver(store: Store, org_id: str, settings: BleSettings, demo: BleDemo | None) -> BleDriver:
    """The BLE driver, on the demo's link when there is a demo."""
    return BleDriver(store, org_id, demo.settings(settings) if demo else settings)
