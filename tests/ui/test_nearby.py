"""Adopting a BLE sensor in the add-device wizard, over real HTTP: virtual sensors in another
process advertise over an HCI socket, the gateway hears them, the page lists them, and
adoption (confirmed) stores a device as `POST /devices` with `type: "ble"` does."""

from __future__ import annotations

import time

import msgspec

from drivers.ble.simulator import DEMO_SENSORS
from tests.ui.conftest import Ui

COLD_ROOM = DEMO_SENSORS[0]  # BTHome, 4.0 °C +/- 1.5


def _card(client, address: str, wanted: str, timeout_s: float = 15.0) -> str:
    """The sensor's part of the nearby list (htmx's fragment), once it holds `wanted`."""
    deadline = time.monotonic() + timeout_s
    while True:
        page = client.get("/devices/new/ble", headers={"HX-Request": "true"}).text
        card = page.split(f'data-address="{address}"')[1:2]
        if card and wanted in card[0].split("</article>")[0]:
            return card[0].split("</article>")[0]
        assert time.monotonic() < deadline, page
        time.sleep(0.3)


def test_nearby_sensors_are_listed_and_one_is_adopted_after_a_confirmation(ble_ui):
    client = ble_ui.signed_in("tech", "technician")
    assert 'href="/devices/new/ble"' in client.get("/devices/new").text
    card = _card(client, COLD_ROOM.address, 'data-point="temperature"')
    assert "<dd>bthome</dd>" in card and " dBm" in card and "not adopted" in card
    assert "encrypted" not in card and 'name="bind_key"' not in card
    assert "<!doctype html>" in client.get("/devices/new/ble").text
    form = {"_csrf": ble_ui.csrf(client), "address": COLD_ROOM.address, "family": "bthome",
            "name": "Cold room"}  # fmt: skip
    ask = client.post("/devices/new/ble", data=form)
    assert f"Adopt bthome sensor {COLD_ROOM.address} as Cold room?" in ask.text
    assert ble_ui.store.devices(ble_ui.store.organization.id) == []
    done = client.post("/devices/new/ble", data={**form, "confirmed": "yes"})
    assert done.status_code == 303
    [device] = ble_ui.store.devices(ble_ui.store.organization.id)
    assert done.headers["location"] == f"/devices/{device.id}"
    assert (device.name, device.type) == ("Cold room", "ble")
    assert device.connection["address"] == COLD_ROOM.address
    keys = {p.key for p in ble_ui.store.points(device.org_id, device.id)}
    assert {"temperature", "humidity", "battery"} <= keys
    # The driver takes the new device on at once; the list then links to it.
    card = _card(client, COLD_ROOM.address, 'class="badge ok">adopted')
    assert f'href="/devices/{device.id}"' in card and 'name="name"' not in card
    # The same sensor again, or a bad bind key: refused with the reason, nothing stored.
    twice = client.post("/devices/new/ble", data={**form, "confirmed": "yes"})
    assert twice.status_code == 422 and "already adopted as Cold room" in twice.text
    ruuvi = {**form, "address": DEMO_SENSORS[1].address, "family": "ruuvi", "bind_key": "00" * 16}
    keyed = client.post("/devices/new/ble", data={**ruuvi, "confirmed": "yes"})
    assert keyed.status_code == 422 and "bind_key" in keyed.text
    nameless = client.post("/devices/new/ble", data={**ruuvi, "name": "", "confirmed": "yes"})
    assert nameless.status_code == 422 and "give the sensor a name" in nameless.text
    assert len(ble_ui.store.devices(ble_ui.store.organization.id)) == 1
    scan = client.post("/devices/new/ble/scan", data={"_csrf": form["_csrf"]})
    assert scan.status_code == 303
    assert "Scanning actively for 10 s." in client.get("/devices/new/ble").text


def test_without_a_radio_the_page_says_so_and_adoption_needs_a_technician(
    gateway_factory, settings
):
    ble_off = msgspec.structs.replace(settings.ble, enabled=False)
    off = msgspec.structs.replace(settings, ble=ble_off)
    ui = Ui(gateway_factory(settings_=off))
    viewer = ui.signed_in("watcher", "viewer")
    assert viewer.get("/devices/new/ble").status_code == 403
    refused = viewer.post("/devices/new/ble", data={"_csrf": ui.csrf(viewer), "name": "x"})
    assert refused.status_code == 403 and "may not do this" in refused.text
    tech = ui.signed_in("tech", "technician")
    forged = tech.post("/devices/new/ble", data={"name": "x", "confirmed": "yes"})
    assert forged.status_code == 403
    page = tech.get("/devices/new/ble")
    assert page.status_code == 200 and "No radio is listening" in page.text
