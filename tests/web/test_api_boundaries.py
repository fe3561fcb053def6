"""Keys limited to device groups or customers (`allowedGroupIds`, `allowedCustomerIds` of /me):
the store keeps every device query inside the boundary, in both dialects."""

from __future__ import annotations

import pytest

from tests.web.conftest import error_of

EVERYTHING = ("devices.read", "devices.write", "telemetry.read", "telemetry.write",
              "public_api.read")  # fmt: skip
READING = {"metric": "power_kw", "ts": "2026-05-24T10:00:00Z", "value": 1.0}


@pytest.fixture
def plant(api):
    """Two groups, a customer's site, and a device in each place (plus one in no group)."""
    admin = api.key(*EVERYTHING)

    def post(path: str, body: dict) -> dict:
        answer = api.client.post(f"/v1{path}", json=body, headers=admin)
        assert answer.status_code == 201, answer.text
        return answer.json()["data"]

    north, south = (
        post("/device-groups", {"name": "North"}),
        post("/device-groups", {"name": "South"}),
    )
    acme = post("/sites", {"name": "Acme plant", "customer_id": "cus_acme"})
    other_site = post("/sites", {"name": "Depot"})
    devices = {
        "north": post("/devices", {"name": "N", "type": "http", "group_id": north["id"]}),
        "south": post("/devices", {"name": "S", "type": "http", "group_id": south["id"]}),
        "acme": post("/devices", {"name": "A", "type": "http", "site_id": acme["id"]}),
        "depot": post("/devices", {"name": "D", "type": "http", "site_id": other_site["id"]}),
    }
    ingest = {"readings": [{"device_id": d["id"], **READING} for d in devices.values()]}
    assert api.client.post("/v1/telemetry/ingest", json=ingest, headers=admin).is_success
    ids = {name: d["id"] for name, d in devices.items()}
    return api, ids, {"north": north["id"], "south": south["id"], "acme": acme["id"],
                      "depot": other_site["id"]}  # fmt: skip


def test_a_group_limited_key_sees_and_touches_only_its_groups_devices(plant):
    api, ids, places = plant
    key = api.key(*EVERYTHING, groups=(places["north"],))
    for prefix in ("/v1", "/api/v1"):
        listed = api.client.get(f"{prefix}/devices", headers=key).json()["data"]
        assert [d["id"] for d in listed] == [ids["north"]]
        count = api.client.get(f"{prefix}/devices/count", headers=key).json()
        assert count.get("data", count)["count"] == 1
        groups = api.client.get(f"{prefix}/device-groups", headers=key).json()["data"]
        assert [g["id"] for g in groups] == [places["north"]]
        sensors = api.client.get(f"{prefix}/sensors", headers=key).json()["data"]
        assert {s.get("device_id", s.get("deviceId")) for s in sensors} == {ids["north"]}
    assert api.client.get(f"/v1/devices/{ids['north']}", headers=key).is_success
    for hidden in ("south", "acme"):
        device = ids[hidden]
        for method, path, body in [
            ("GET", f"/devices/{device}", None),
            ("PATCH", f"/devices/{device}", {"name": "taken"}),
            ("GET", f"/devices/{device}/health", None),
            ("POST", f"/devices/{device}/commands", {"command": "refresh_config"}),
            (
                "GET",
                f"/devices/{device}/telemetry?from=2026-05-24T00:00:00Z&to=2026-05-25T00:00:00Z",
                None,
            ),
            (
                "GET",
                f"/telemetry?device_id={device}&metric=power_kw"
                "&from=2026-05-24T00:00:00Z&to=2026-05-25T00:00:00Z",
                None,
            ),
            ("GET", f"/sensors?device_id={device}", None),
            ("DELETE", f"/devices/{device}", None),
        ]:
            error_of(api.client.request(method, f"/v1{path}", json=body, headers=key), 404,
                     "not_found")  # fmt: skip
        theirs = {"readings": [{"device_id": device, **READING}]}
        refused = error_of(api.client.post("/v1/telemetry/ingest", json=theirs, headers=key),
                           422, "validation_failed")  # fmt: skip
        assert refused["details"]["unknown_devices"] == [device]
    # Nothing of the hidden devices changed.
    admin = api.key(*EVERYTHING)
    assert (
        api.client.get(f"/v1/devices/{ids['south']}", headers=admin).json()["data"]["name"] == "S"
    )


def test_a_group_limited_key_cannot_place_a_device_outside_its_groups(plant):
    api, ids, places = plant
    key = api.key(*EVERYTHING, groups=(places["north"],))
    for body in ({"name": "x", "type": "http"},
                 {"name": "x", "type": "http", "group_id": places["south"]}):  # fmt: skip
        error_of(api.client.post("/v1/devices", json=body, headers=key), 422, "validation_failed")
    inside = {"name": "x", "type": "http", "group_id": places["north"]}
    assert api.client.post("/v1/devices", json=inside, headers=key).status_code == 201
    moved = api.client.patch(f"/v1/devices/{ids['north']}", json={"group_id": places["south"]},
                             headers=key)  # fmt: skip
    assert "groups" in error_of(moved, 422, "validation_failed")["message"]
    error_of(api.client.post("/v1/device-groups", json={"name": "Mine"}, headers=key), 422,
             "validation_failed")  # fmt: skip


def test_a_customer_limited_key_sees_devices_at_its_customers_sites_only(plant):
    api, ids, places = plant
    key = api.key(*EVERYTHING, customers=("cus_acme",))
    listed = api.client.get("/api/v1/devices", headers=key).json()["data"]
    assert [d["id"] for d in listed] == [ids["acme"]]
    sites = api.client.get("/api/v1/sites", headers=key).json()["data"]
    assert [(s["id"], s["customerId"]) for s in sites] == [(places["acme"], "cus_acme")]
    error_of(api.client.get(f"/v1/sites/{places['depot']}", headers=key), 404, "not_found")
    error_of(api.client.get(f"/v1/devices/{ids['depot']}", headers=key), 404, "not_found")
    error_of(api.client.post("/v1/sites", json={"name": "Elsewhere", "customer_id": "cus_other"},
                             headers=key), 422, "validation_failed")  # fmt: skip
    own = api.client.post("/v1/sites", json={"name": "Acme 2", "customer_id": "cus_acme"},
                          headers=key).json()["data"]  # fmt: skip
    made = api.client.post("/v1/devices", headers=key,
                           json={"name": "x", "type": "http", "site_id": own["id"]})  # fmt: skip
    assert made.status_code == 201, made.text


def test_me_shows_the_keys_boundaries_and_an_unlimited_key_sees_everything(plant):
    api, ids, places = plant
    key = api.key("public_api.read", groups=(places["north"],), customers=("cus_acme",))
    me = api.client.get("/api/v1/me", headers=key).json()
    assert me["allowedGroupIds"] == [places["north"]]
    assert me["allowedCustomerIds"] == ["cus_acme"]
    both = api.key("devices.read", groups=(places["north"],), customers=("cus_acme",))
    assert api.client.get("/v1/devices", headers=both).json()["data"] == []  # AND-combined
    everyone = api.client.get("/v1/devices", headers=api.key("devices.read")).json()["data"]
    assert {d["id"] for d in everyone} == set(ids.values())


def test_a_key_cannot_be_limited_to_another_organizations_group(plant):
    api, _, _ = plant
    store = api.runtime.store
    from edge.store import NotFound

    with pytest.raises(NotFound):
        store.create_api_key(store.organization.id, "x", ["devices.read"], groups=["grp_nope"])


def test_readings_and_exports_stay_inside_the_boundary(plant):
    api, ids, places = plant
    key = api.key(*EVERYTHING, groups=(places["north"],))
    window = "from=2026-05-24T00:00:00Z&to=2026-05-25T00:00:00Z"
    for path in ("/readings", "/readings/stats", "/readings/aggregated"):
        own = api.client.get(f"/v1{path}?device_id={ids['north']}&metric=power_kw&{window}",
                             headers=key)  # fmt: skip
        assert own.status_code == 200, own.text
        error_of(api.client.get(f"/v1{path}?device_id={ids['south']}&metric=power_kw&{window}",
                                headers=key), 404, "not_found")  # fmt: skip
    error_of(api.client.get(f"/v1/telemetry/export?device_id={ids['south']}&{window}",
                            headers=key), 404, "not_found")  # fmt: skip
    sensors = api.client.get(f"/v1/sensors?device_id={ids['south']}",
                             headers=api.key(*EVERYTHING)).json()["data"]  # fmt: skip
    error_of(api.client.get(f"/v1/readings?sensor_id={sensors[0]['id']}&{window}", headers=key),
             404, "not_found")  # fmt: skip
