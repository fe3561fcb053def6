"""Sites, device groups, sensors, device profiles and the OpenAPI schema over HTTP."""

from __future__ import annotations

from tests.web.conftest import error_of


def test_sites_and_groups_are_created_listed_and_fetched_in_both_dialects(api):
    headers = api.key("devices.read", "devices.write")
    for path in ("/sites", "/device-groups"):
        made = api.client.post(f"/v1{path}", json={"name": "Dhaka WH1"}, headers=headers)
        assert made.status_code == 201, made.text
        item = made.json()["data"]
        assert item["id"].startswith("site_" if path == "/sites" else "grp_")
        listed = api.client.get(f"/api/v1{path}", headers=headers).json()
        assert [i["id"] for i in listed["data"]] == [item["id"]] and "updatedAt" in listed["data"][
            0
        ]
        one = api.client.get(f"/v1{path}/{item['id']}", headers=headers).json()["data"]
        assert one["name"] == "Dhaka WH1"
        error_of(api.client.post(f"/v1{path}", json={}, headers=headers), 422, "validation_failed")
        error_of(api.client.get(f"/v1{path}/site_nope", headers=headers), 404, "not_found")


def test_a_device_can_be_placed_on_a_site_of_its_own_organization_only(api):
    headers = api.key("devices.read", "devices.write")
    site = api.client.post("/v1/sites", json={"name": "Plant"}, headers=headers).json()["data"]
    ok = api.client.post("/v1/devices", json={"name": "m", "type": "http", "site_id": site["id"]},
                         headers=headers)  # fmt: skip
    assert ok.status_code == 201
    listed = api.client.get("/v1/devices", params={"site": site["id"]}, headers=headers).json()
    assert [d["id"] for d in listed["data"]] == [ok.json()["data"]["id"]]
    bad = api.client.post("/v1/devices", json={"name": "m", "type": "http", "site_id": "site_x"},
                          headers=headers)  # fmt: skip
    error_of(bad, 404, "not_found")


def test_sensors_list_a_devices_points_and_profiles_are_browsable(api):
    headers = api.key("devices.read", "devices.write")
    body = {"name": "m", "type": "modbus_tcp", "profile": "eastron_sdm120",
            "connection": {"host": "127.0.0.1", "port": 1}}  # fmt: skip
    device = api.client.post("/v1/devices", json=body, headers=headers).json()["data"]
    sensors = api.client.get("/api/v1/sensors", params={"deviceId": device["id"]},
                             headers=headers).json()["data"]  # fmt: skip
    assert {s["key"] for s in sensors} >= {"voltage", "active_power"}
    assert all(s["id"].startswith("sen_") and "dataType" in s for s in sensors)
    profiles = api.client.get("/v1/device-profiles", headers=headers).json()["data"]
    assert "eastron_sdm630" in {p["id"] for p in profiles}
    one = api.client.get("/v1/device-profiles/eastron_sdm630", headers=headers).json()["data"]
    assert one["manufacturer"] == "Eastron" and one["points"]
    error_of(api.client.get("/v1/device-profiles/nope", headers=headers), 404, "not_found")


def test_the_openapi_schema_is_served_where_both_clouds_publish_it(api):
    for path in ("/api/schemas", "/api/v3/api-docs"):
        schema = api.client.get(path).json()
        assert schema["openapi"].startswith("3.")
        assert "/v1/devices" in schema["paths"] and "/api/v1/devices" in schema["paths"]
