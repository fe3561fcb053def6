"""bleak's own BlueZ backend, the production transport, against a mock bluetoothd (dbusmock's
bluez5 template on a private D-Bus daemon): adverts become readings, and a BlueZ without
passive scanning (the mock has no advertisement monitor) falls back to active scanning."""

from __future__ import annotations

import asyncio
import time

import msgspec
import pytest

from drivers.ble.devices import add_device
from drivers.ble.driver import BleDriver
from edge.models import Quality
from edge.tasks import cancel_and_wait
from tests.drivers.ble import bluez_mock

BTHOME = "0000fcd2-0000-1000-8000-00805f9b34fb"
SENSOR = "A4:C1:38:8D:18:B2"

pytestmark = pytest.mark.skipif(bluez_mock.available() is not None,
                                reason=str(bluez_mock.available()))  # fmt: skip


def test_adverts_through_bluez_become_readings(run, store, settings, tmp_path, monkeypatch):
    org = store.organization.id
    point = {"key": "temperature", "unit": "°C", "interval_s": 0.1}
    device = add_device(store, org, name="ATC", points=[point],
                        connection={"address": SENSOR, "family": "bthome"})  # fmt: skip
    ble = msgspec.structs.replace(settings.ble, transport="bluez", adapter="hci0")

    async def scenario(address: str):
        bluetoothd = await bluez_mock.Bluetoothd.connect(address)
        driver = None
        task = None
        try:
            await bluetoothd.add_adapter("hci0")
            driver = BleDriver(store, org, ble)
            task = asyncio.create_task(driver.run())
            deadline = time.monotonic() + 10
            while driver.scanner.mode != "active":
                assert time.monotonic() < deadline, driver.scanner.status()
                await asyncio.sleep(0.05)
            # bthome-ble's test_bthome_temperature_humidity advert: 25.06 °C, then 25.07 °C.
            await bluetoothd.advertise(SENSOR, -61, {BTHOME: bytes.fromhex("4002ca0903bf13")},
                                       name="ATC_8D18B2")  # fmt: skip
            while driver.status(device.id) != "online":
                assert time.monotonic() < deadline, driver.scanner.status()
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.2)
            await bluetoothd.readvertise(SENSOR, -55, {BTHOME: bytes.fromhex("4002cb0903bf13")})
            while driver.sensors[SENSOR].rssi != -55:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.2)
            return driver.nearby_sensors()
        finally:
            if task is not None:
                await cancel_and_wait(task)
            await bluetoothd.close()
            await bluez_mock.release_bleak()

    with bluez_mock.private_bluez(tmp_path) as address:
        monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", address)
        nearby = run(scenario(address))

    assert nearby[0]["address"] == SENSOR and nearby[0]["family"] == "bthome"
    pid = store.points(org, device.id)[0].id
    now = time.time_ns() // 1_000_000
    values = [r.value for r in store.range(org, pid, now - 60_000, now + 1000).items
              if r.quality == Quality.GOOD]  # fmt: skip
    assert values[0] == 25.06 and values[-1] == 25.07
