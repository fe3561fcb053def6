"""End to end over real HTTP: virtual sensors in another process advertise over an HCI socket,
the gateway's scanner hears them, the parsers decode them, the store keeps them, the API serves
them; discovery lists them and adoption makes a device with its points."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from drivers.ble.simulator import DEMO_SENSORS
from edge import settings as settings_mod

COLD_ROOM = DEMO_SENSORS[0]  # BTHome, 4.0 °C +/- 1.5
SERVER_ROOM = DEMO_SENSORS[1]  # Ruuvi


@pytest.fixture
def ble_api(ble_simulator, gateway_factory, tmp_path):
    # The simulator is set up first so that it outlives the gateway at teardown.
    settings = settings_mod.load(
        None, {}, data_dir=str(tmp_path / "ble"), http={"host": "127.0.0.1", "port": 0},
        ble={"transport": "bumble-virtual", "adapter": ble_simulator},
    )  # fmt: skip
    gw = gateway_factory(settings_=settings)
    store = gw.runtime.store
    _, secret = store.create_api_key(
        store.organization.id, "test", ["devices.read", "devices.write", "telemetry.read"]
    )
    gw.headers = {"Authorization": f"Bearer {secret}"}
    return gw


def wait_for(check, timeout_s=15.0):
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.2)


def nearby(gw, **query):
    r = gw.client.get("/v1/devices/nearby", headers=gw.headers, params=query)
    assert r.status_code == 200, r.text
    return r.json()


def test_nearby_sensors_are_listed_with_family_rssi_and_last_values(ble_api):
    def three():
        items = nearby(ble_api)["data"]
        return items if len(items) >= 3 and all(i["values"] for i in items[:3]) else None

    items = wait_for(three)
    assert items, nearby(ble_api)
    by_address = {i["address"]: i for i in items}
    cold = by_address[COLD_ROOM.address]
    assert cold["family"] == "bthome"
    assert cold["device_id"] is None
    assert -100 < cold["rssi"] < 0
    assert 2.4 <= cold["values"]["temperature"]["value"] <= 5.6
    assert cold["values"]["temperature"]["unit"] == "°C"
    assert by_address[SERVER_ROOM.address]["family"] == "ruuvi"
    assert {i["family"] for i in items} >= {"bthome", "ruuvi", "govee"}
    # Keyset pages by address, and the camelCase dialect.
    first = nearby(ble_api, limit=1)
    assert len(first["data"]) == 1 and first["meta"]["pagination"]["has_more"]
    second = nearby(ble_api, limit=1, cursor=first["meta"]["pagination"]["next"])
    assert second["data"][0]["address"] > first["data"][0]["address"]
    camel = ble_api.client.get("/api/v1/devices/nearby", headers=ble_api.headers,
                               params={"family": "ruuvi"}).json()  # fmt: skip
    assert [i["address"] for i in camel["data"]] == [SERVER_ROOM.address]
    assert "lastSeen" in camel["data"][0] and "deviceId" in camel["data"][0]
    bad = ble_api.client.get("/v1/devices/nearby", headers=ble_api.headers,
                             params={"cursor": "%%%"})  # fmt: skip
    assert bad.status_code == 400
    # An active scan on demand, then back to passive.
    scanner = ble_api.runtime.discovery[0].scanner
    assert scanner.mode == "passive"
    r = ble_api.client.post("/v1/devices/nearby/scan", headers=ble_api.headers,
                            params={"seconds": 1})  # fmt: skip
    assert (r.status_code, r.json()["data"]) == (202, {"scanning_s": 1.0})
    assert wait_for(lambda: scanner.mode == "active", 5)
    assert wait_for(lambda: scanner.mode == "passive", 5)


@pytest.mark.slow
def test_adopting_a_sensor_creates_a_device_whose_readings_reach_the_api(ble_api):
    assert wait_for(lambda: any(i["address"] == COLD_ROOM.address and i["values"]
                                for i in nearby(ble_api)["data"]))  # fmt: skip
    started = datetime.now(UTC) - timedelta(seconds=1)
    r = ble_api.client.post("/v1/devices", headers=ble_api.headers, json={
        "name": "Cold room", "type": "ble",
        "connection": {"address": COLD_ROOM.address.lower(), "family": "bthome"},
    })  # fmt: skip
    assert r.status_code == 201, r.text
    device = r.json()["data"]
    assert device["type"] == "ble"
    assert device["connection"]["address"] == COLD_ROOM.address
    sensors = ble_api.client.get("/v1/sensors", headers=ble_api.headers,
                                 params={"device_id": device["id"]}).json()["data"]  # fmt: skip
    keys = {s.get("key") or s.get("metric") for s in sensors}
    assert {"temperature", "humidity", "battery", "rssi"} <= keys

    def temperatures():
        to = (datetime.now(UTC) + timedelta(seconds=5)).isoformat()
        r = ble_api.client.get(f"/v1/devices/{device['id']}/telemetry", headers=ble_api.headers,
                               params={"from": started.isoformat(), "to": to})  # fmt: skip
        assert r.status_code == 200, r.text
        return [x for x in r.json()["data"] if x["metric"] == "temperature"]

    readings = wait_for(temperatures, 20)
    assert readings, "no temperature reading reached the API"
    assert all(2.4 <= x["value"] <= 5.6 for x in readings)
    assert readings[0]["quality"] == "good"
    health = ble_api.client.get(f"/v1/devices/{device['id']}/health",
                                headers=ble_api.headers).json()["data"]  # fmt: skip
    assert health["status"] == "online", health
    assert health["last_contact"] is not None
    assert health["details"]["family"] == "bthome" and health["details"]["adverts"] >= 1
    assert isinstance(health["details"]["rssi"], int)
    listed = {i["address"]: i for i in nearby(ble_api)["data"]}
    assert listed[COLD_ROOM.address]["device_id"] == device["id"]


@pytest.mark.parametrize(
    ("connection", "field"),
    [
        ({"address": "nope", "family": "bthome"}, "address"),
        ({"address": "A4:C1:38:00:00:01", "family": "zigbee"}, "family"),
        ({"address": "A4:C1:38:00:00:01", "family": "ruuvi", "bind_key": "00" * 16}, "bind_key"),
        ({"address": "A4:C1:38:00:00:01", "family": "bthome", "bind_key": "zz"}, "bind_key"),
    ],
)
def test_bad_ble_connections_are_refused_with_422(api, connection, field):
    r = api.client.post("/v1/devices", headers=api.key("devices.write"),
                        json={"name": "x", "type": "ble", "connection": connection})  # fmt: skip
    assert r.status_code == 422, r.text
    assert field in r.json()["error"]["message"]


def test_ble_families_are_sensor_profiles(api):
    r = api.client.get("/v1/sensor-profiles", headers=api.key("devices.read"))
    ids = {p["id"] for p in r.json()["data"]}
    assert {"ble.bthome", "ble.xiaomi", "ble.ruuvi", "ble.govee", "ble.inkbird"} <= ids
    one = api.client.get("/v1/sensor-profiles/ble.bthome", headers=api.key("devices.read"))
    assert one.json()["data"]["encrypted"] is True


def test_a_sensor_is_adopted_once_until_its_device_is_deleted(api):
    headers = api.key("devices.write", "devices.read")
    body = {"name": "Freezer", "type": "ble",
            "connection": {"address": "A4:C1:38:00:00:07", "family": "xiaomi"}}  # fmt: skip
    first = api.client.post("/v1/devices", headers=headers, json=body)
    assert first.status_code == 201, first.text
    again = {**body, "name": "Freezer again",
             "connection": {**body["connection"], "address": "a4:c1:38:00:00:07"}}  # fmt: skip
    twin = api.client.post("/v1/devices", headers=headers, json=again)
    assert twin.status_code == 409, twin.text
    message = twin.json()["error"]["message"]
    assert "A4:C1:38:00:00:07 is already adopted as Freezer" in message
    device_id = first.json()["data"]["id"]
    assert api.client.delete(f"/v1/devices/{device_id}", headers=headers).status_code == 204
    assert api.client.post("/v1/devices", headers=headers, json=again).status_code == 201
