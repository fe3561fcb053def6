"""Components (a device's parts) and sensor profiles (decoders) over real HTTP."""

from __future__ import annotations

from typing import get_args

from drivers.modbus.points import DataType
from tests.web.conftest import error_of


def _device_with_sensors(api, headers, name: str = "Pump skid") -> tuple[str, dict[str, str]]:
    points = [{"key": "motor_current", "unit": "A"}, {"key": "flow", "unit": "m3/h"}]
    body = {"name": name, "type": "http", "points": points}
    device = api.client.post("/v1/devices", json=body, headers=headers).json()["data"]
    sensors = api.client.get("/v1/sensors", params={"device_id": device["id"]},
                             headers=headers).json()["data"]  # fmt: skip
    return device["id"], {s["key"]: s["id"] for s in sensors}


def test_a_component_is_created_fetched_changed_with_if_match_and_deleted(api):
    headers = api.key("devices.read", "devices.write")
    device, sensors = _device_with_sensors(api, headers)
    body = {"deviceId": device, "name": "Motor", "kind": "motor", "serialNumber": "M-001",
            "sensorIds": [sensors["motor_current"]]}  # fmt: skip
    made = api.client.post("/api/v1/components", json=body, headers=headers)
    assert made.status_code == 201, made.text
    component = made.json()
    assert component["id"].startswith("cmp_") and component["serialNumber"] == "M-001"
    assert made.headers["etag"] == component["etag"]

    url = f"/v1/components/{component['id']}"
    fetched = api.client.get(url, headers=headers)
    assert fetched.json()["data"]["sensor_ids"] == [sensors["motor_current"]]
    stale = {**headers, "If-Match": component["etag"]}
    moved = api.client.patch(url, json={"sensor_ids": list(sensors.values())}, headers=stale)
    assert moved.status_code == 200, moved.text
    error_of(api.client.patch(url, json={"name": "Again"}, headers=stale), 409, "conflict")
    fresh = {**headers, "If-Match": moved.headers["etag"]}
    assert api.client.patch(url, json={"name": "Main motor"}, headers=fresh).is_success
    assert api.client.get(url, headers=headers).json()["data"]["name"] == "Main motor"

    listed = api.client.get("/v1/components", params={"device_id": device}, headers=headers)
    assert [c["id"] for c in listed.json()["data"]] == [component["id"]]
    assert api.client.delete(url, headers=headers).status_code == 204
    error_of(api.client.get(url, headers=headers), 404, "not_found")
    since = api.client.get("/api/v1/components", params={"updatedSince": "2000-01-01T00:00:00Z"},
                           headers=headers).json()["data"]  # fmt: skip
    assert [c["id"] for c in since] == [component["id"]] and since[0]["deletedAt"]
    assert api.client.get("/v1/components", headers=headers).json()["data"] == []


def test_bad_component_bodies_get_clear_errors_and_change_nothing(api):
    headers = api.key("devices.read", "devices.write")
    device, _ = _device_with_sensors(api, headers)
    other, theirs = _device_with_sensors(api, headers, "Other skid")
    post = lambda body: api.client.post("/v1/components", json=body, headers=headers)  # noqa: E731
    error_of(post({"name": "x"}), 422, "validation_failed")
    error_of(post({"device_id": device, "name": ""}), 422, "validation_failed")
    error_of(post({"device_id": device, "name": "x", "colour": "red"}), 422, "validation_failed")
    error_of(post({"device_id": "dev_nope", "name": "x"}), 404, "not_found")
    wrong = error_of(post({"device_id": device, "name": "x", "sensor_ids": [theirs["flow"]]}),
                     422, "validation_failed")  # fmt: skip
    assert theirs["flow"] in wrong["message"]
    made = post({"device_id": device, "name": "CT"}).json()["data"]
    url = f"/v1/components/{made['id']}"
    error_of(api.client.patch(url, json={"device_id": other}, headers=headers), 422,
             "validation_failed")  # fmt: skip
    error_of(api.client.patch(url, json={"name": " "}, headers=headers), 422, "validation_failed")
    error_of(api.client.patch(url, json={"sensor_ids": "flow"}, headers=headers), 422,
             "validation_failed")  # fmt: skip
    assert api.client.get(url, headers=headers).json()["data"] == {**made}


def test_components_follow_their_devices_boundary_and_organization(api):
    headers = api.key("devices.read", "devices.write")
    group = api.client.post("/v1/device-groups", json={"name": "North"}, headers=headers)
    device, _ = _device_with_sensors(api, headers)
    made = api.client.post("/v1/components", json={"device_id": device, "name": "CT"},
                           headers=headers).json()["data"]  # fmt: skip
    limited = api.key("devices.read", "devices.write", groups=(group.json()["data"]["id"],))
    error_of(api.client.get(f"/v1/components/{made['id']}", headers=limited), 404, "not_found")
    assert api.client.get("/v1/components", headers=limited).json()["data"] == []
    error_of(api.client.post("/v1/components", json={"device_id": device, "name": "x"},
                             headers=limited), 404, "not_found")  # fmt: skip


def test_sensor_profiles_describe_every_modbus_decoder(api):
    headers = api.key("devices.read")
    listed = api.client.get("/v1/sensor-profiles", headers=headers).json()["data"]
    modbus = [p for p in listed if p["protocol"] == "modbus"]
    assert {p["data_type"] for p in modbus} == set(get_args(DataType))
    float32 = api.client.get("/api/v1/sensor-profiles/modbus.float32", headers=headers).json()
    assert float32["registers"] == 2 and float32["orders"] == ["ABCD", "BADC", "CDAB", "DCBA"]
    assert "scale" in float32["parameters"]
    string = api.client.get("/v1/sensor-profiles/modbus.string", headers=headers).json()["data"]
    assert string["registers"] is None
    error_of(api.client.get("/v1/sensor-profiles/modbus.float128", headers=headers), 404,
             "not_found")  # fmt: skip
