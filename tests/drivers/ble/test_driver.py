"""The driver on an in-process virtual link: stale detection with online/offline events, the
scanner watchdog, GATT polls through bleak-retry-connector, one connection at a time."""

from __future__ import annotations

import asyncio
import time

import msgspec
import pytest
from bleak.backends.device import BLEDevice

from drivers.ble.bumble_radio import BumbleClient, BumbleRadio
from drivers.ble.devices import GattRead, add_device
from drivers.ble.driver import BleDriver
from drivers.ble.gatt import GattPoller, GattTarget
from drivers.ble.scanner import AdapterScanner
from drivers.ble.simulator import GattSensor, SensorSpec, VirtualField
from drivers.ble.transports import local_link, open_radio
from edge.models import Quality
from edge.runtime import CommandRefused
from edge.tasks import cancel_and_wait

SENSOR = SensorSpec("bthome", "Fridge", "C1:00:00:00:00:01", interval_s=0.2)
PROBE = "C1:00:00:00:00:09"


def ble_settings(settings, link_name, **over):
    return msgspec.structs.replace(
        settings.ble, transport="bumble-virtual", adapter=f"local:{link_name}", **over
    )


async def until(check, timeout_s=10.0):
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


def test_a_silent_sensor_goes_stale_after_a_multiple_of_its_interval_and_comes_back(
    run, store, settings, link_name
):
    org = store.organization.id
    point = {"key": "temperature", "interval_s": 0.1}
    device = add_device(store, org, name="Fridge", points=[point],
                        connection={"address": SENSOR.address, "family": "bthome"})  # fmt: skip

    async def scenario():
        field = VirtualField(local_link(link_name), [SENSOR], update_s=0.2)
        await field.start()
        driver = BleDriver(store, org, ble_settings(settings, link_name, stale_multiple=5))
        tasks = [asyncio.create_task(driver.run()), asyncio.create_task(field.run())]
        try:
            await until(lambda: driver.status(device.id) == "online")
            availability = driver.sensors[SENSOR.address].availability
            await until(lambda: availability.interval_s is not None)
            assert 0.1 < availability.interval_s < 0.5
            field.silence(SENSOR.address)
            silenced = time.monotonic()
            await until(lambda: driver.status(device.id) == "offline")
            assert time.monotonic() - silenced < 5 * 0.5 + 1.5
            field.silence(SENSOR.address, silent=False)
            await until(lambda: driver.status(device.id) == "online")
            await asyncio.sleep(0.3)
        finally:
            for task in tasks:
                await cancel_and_wait(task)

    run(scenario())
    events = [e.type for e in store.events(org) if e.device_id == device.id]
    assert "device.offline" in events and "device.online" in events
    point = store.points(org, device.id)[0]
    now = time.time_ns() // 1_000_000
    stored = store.range(org, point.id, now - 60_000, now + 1000).items
    qualities = [r.quality for r in stored]
    assert Quality.STALE in qualities and Quality.GOOD in qualities
    # A stale reading carries no value: nothing is made up for the silence.
    assert all(r.value is None for r in stored if r.quality == Quality.STALE)


def test_the_watchdog_restarts_a_scanner_that_hears_nothing(run, settings, link_name):
    async def scenario():
        radio = open_radio(ble_settings(settings, link_name), [])
        scanner = AdapterScanner(radio.adapter, radio.scanner, watchdog_s=0.3)
        task = asyncio.create_task(scanner.run())
        try:
            await until(lambda: scanner.restarts >= 2, 5)
            assert scanner.running or scanner.restarts >= 2
            # Once a sensor advertises, the watchdog leaves the scanner alone.
            field = VirtualField(local_link(link_name), [SENSOR], update_s=0.1)
            await field.start()
            fed = asyncio.create_task(field.run())
            await until(lambda: SENSOR.address in scanner.latest, 5)
            restarts = scanner.restarts
            await asyncio.sleep(1.0)
            assert scanner.restarts == restarts
            await cancel_and_wait(fed)
        finally:
            await cancel_and_wait(task)
            await radio.close()

    run(scenario())


@pytest.mark.slow
def test_gatt_points_are_polled_one_connection_at_a_time(run, store, settings, link_name):
    org = store.organization.id
    probes = [GattSensor(f"Probe {n}", f"C1:00:00:00:00:1{n}", temperature=18.0 + n)
              for n in range(2)]  # fmt: skip
    gatt_point = {"key": "temperature", "unit": "°C", "interval_s": 10,
                  "gatt": {"characteristic": "2a6e", "format": "int16", "scale": 0.01}}  # fmt: skip
    devices = [
        add_device(
            store,
            org,
            name=p.name,
            points=[gatt_point],
            connection={"address": p.address, "family": "bthome"},
        )
        for p in probes
    ]

    async def scenario():
        field = VirtualField(local_link(link_name), (), probes)
        await field.start()
        driver = BleDriver(store, org, ble_settings(settings, link_name))
        task = asyncio.create_task(driver.run())
        try:
            await until(lambda: all(p.reads for p in probes), 20)
            connections = [p.connections for p in probes]
            # Asked three times at once: one more connection, after the debounce.
            for _ in range(3):
                await driver.command(devices[0].id, {"command": "poll"}, "test")
            await asyncio.sleep(0.5)
            assert [p.connections for p in probes] == connections
            await until(lambda: probes[0].connections == connections[0] + 1, 5)
            await asyncio.sleep(0.5)
            assert probes[0].connections == connections[0] + 1
            assert field.gatt_open_max == 1  # never two connections at once on the adapter
            health = driver.health(devices[0].id)
            assert health["gatt"]["failures"] == 0 and health["poll_success_rate"] == 1.0
        finally:
            await cancel_and_wait(task)
            await field.stop()

    run(scenario())
    for probe, device in zip(probes, devices, strict=True):
        point = store.points(org, device.id)[0]
        latest = store.latest(org, [point.id])[point.id]
        assert latest.value == probe.temperature
        assert latest.quality == Quality.GOOD


def test_an_active_scan_on_demand_ends_back_in_passive_mode(run, store, settings, link_name):
    async def scenario():
        driver = BleDriver(store, store.organization.id, ble_settings(settings, link_name))
        task = asyncio.create_task(driver.run())
        try:
            await until(lambda: driver.scanner.mode == "passive")
            assert driver.scan(1.0) == 1.0
            await until(lambda: driver.scanner.mode == "active")
            await until(lambda: driver.scanner.mode == "passive", 5)
            with pytest.raises(CommandRefused):
                await driver.command("dev_x", {"command": "poll"}, "test")
        finally:
            await cancel_and_wait(task)

    run(scenario())


def test_a_missing_usb_dongle_is_an_error_the_scanner_retries_not_a_crash(run, settings):
    async def scenario():
        radio = open_radio(msgspec.structs.replace(settings.ble, transport="usb",
                                                   adapter="0"), [])  # fmt: skip
        assert radio.bumble is not None and radio.bumble.spec == "usb:0"
        scanner = AdapterScanner(radio.adapter, radio.scanner)
        task = asyncio.create_task(scanner.run())
        try:
            await until(lambda: scanner.failures >= 1, 5)
            assert not scanner.running and scanner.last_error
        finally:
            await cancel_and_wait(task)
            await radio.close()

    run(scenario())


KEY = "231d39c1d7cc1ab1aee224cd096db932"


def test_encrypted_bthome_adverts_are_read_with_the_bind_key_and_refused_without(
    run, store, settings, link_name
):
    org = store.organization.id
    locked = [SensorSpec("bthome", f"Vault {n}", f"C2:00:00:00:00:0{n}", 0.2, 6.0,
                         bind_key=bytes.fromhex(KEY)) for n in (1, 2)]  # fmt: skip
    points = [{"key": "temperature", "interval_s": 0.1}, {"key": "rssi", "interval_s": 0.1}]
    keyed = add_device(store, org, name="Vault 1", points=points, connection={
        "address": locked[0].address, "family": "bthome", "bind_key": KEY})  # fmt: skip
    keyless = add_device(store, org, name="Vault 2", points=points,
                         connection={"address": locked[1].address, "family": "bthome"})  # fmt: skip

    async def scenario():
        field = VirtualField(local_link(link_name), locked, update_s=0.2)
        await field.start()
        driver = BleDriver(store, org, ble_settings(settings, link_name))
        tasks = [asyncio.create_task(driver.run()), asyncio.create_task(field.run())]
        try:
            await until(lambda: all(driver.status(d.id) == "online" for d in (keyed, keyless)))
            await asyncio.sleep(0.5)
            assert driver.health(keyless.id)["encrypted_unreadable"] is True
            assert "bind key" in driver.health(keyless.id)["last_error"]
            assert driver.health(keyed.id)["encrypted_unreadable"] is False
        finally:
            for task in tasks:
                await cancel_and_wait(task)

    run(scenario())
    now = time.time_ns() // 1_000_000

    def stored(device, key):
        point = next(p for p in store.points(org, device.id) if p.key == key)
        return store.range(org, point.id, now - 60_000, now + 1000).items

    assert stored(keyed, "temperature") and all(
        4.4 <= r.value <= 7.6 for r in stored(keyed, "temperature"))  # fmt: skip
    assert stored(keyless, "temperature") == []  # nothing it could not read is stored
    assert stored(keyless, "rssi")
    events = [(e.type, e.device_id) for e in store.events(org)]
    assert ("ble.decrypt_failed", keyless.id) in events
    assert ("ble.decrypt_failed", keyed.id) not in events


def test_a_gatt_poll_that_fails_is_a_comm_error_reading_without_a_value(run, link_name):
    async def scenario():
        radio = BumbleRadio(link=local_link(link_name))
        await radio.open()
        out: list = []
        kwargs = {"backend": BumbleClient, "radio": radio}

        def ghost(address: str) -> BLEDevice:
            return BLEDevice(address, "ghost", {})

        poller = GattPoller(asyncio.Lock(), kwargs, out.extend, ghost, timeout_s=0.5)
        read = GattRead("temperature", "2a6e", "int16", 0.01, "°C", 10.0)
        target = GattTarget("dev_ghost", "C1:00:00:00:00:55", "ghost", ((read, 7),))
        try:
            await poller.poll(target)  # nobody at that address answers
        finally:
            await radio.close()
        assert not poller.lock.locked()
        return out, target

    out, target = run(scenario())
    assert [(r.point_id, r.value, r.quality) for r in out] == [(7, None, Quality.COMM_ERROR)]
    assert (target.failures, target.errors, target.polls) == (1, 1, 1)
    assert target.last_error


@pytest.mark.slow
def test_the_scanner_reconnects_when_the_virtual_controller_process_restarts(
    run, settings, ble_process
):
    async def scenario():
        radio = open_radio(msgspec.structs.replace(
            settings.ble, transport="bumble-virtual", adapter=ble_process.adapter), [])  # fmt: skip
        scanner = AdapterScanner(radio.adapter, radio.scanner, watchdog_s=1.0, reset=radio.close)
        task = asyncio.create_task(scanner.run())
        try:
            await until(lambda: scanner.adverts > 0)
            await asyncio.to_thread(ble_process.stop)
            await until(lambda: scanner.restarts >= 1, 10)
            await asyncio.to_thread(ble_process.start)
            heard = scanner.adverts
            await until(lambda: scanner.adverts > heard and scanner.running, 20)
        finally:
            await cancel_and_wait(task)
            await radio.close()

    run(scenario())
