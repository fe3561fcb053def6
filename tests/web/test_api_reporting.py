"""Reporting figures computed from records and readings made over real HTTP, and what a key
limited to groups or customers sees of the maintenance surface."""

from __future__ import annotations

from tests.web.conftest import error_of
from tests.web.test_api_maintenance import WRITE, post

READ = ("assets.read", "service_reports.read", "service_visits.read", "customers.read",
        "appointments.read", "reporting.read")  # fmt: skip


def test_assets_summary_and_service_performance_add_up_the_records(api):
    headers = api.key(*WRITE, "reporting.read")
    device = post(api, headers, "/devices", {"name": "Sensor", "type": "http"})
    due = post(api, headers, "/assets", {"name": "A", "device_id": device["id"],
                                         "next_service_at": "2026-01-01T00:00:00Z"})  # fmt: skip
    later = post(api, headers, "/assets", {"name": "B", "next_service_at": "2099-01-01T00:00:00Z"})
    post(api, headers, "/assets", {"name": "C", "is_active": False,
                                   "next_service_at": "2026-01-01T00:00:00Z"})  # fmt: skip
    for asset, started, status, estimated, actual in (
        (due, "2026-03-01T00:00:00Z", "completed", 90, 100.5),
        (later, "2026-03-02T00:00:00Z", "open", 20, None),
        (later, "2026-03-03T00:00:00Z", "planned", 30, 50),
        (later, "2025-01-01T00:00:00Z", "completed", 1000, 1000),
    ):
        post(api, headers, "/service-visits", {"asset_id": asset["id"], "started_at": started,
                                               "status": status, "estimated_cost": estimated,
                                               "actual_cost": actual})  # fmt: skip
    summary = api.client.get("/api/v1/reporting/assets-summary", headers=headers).json()
    assert summary == {"totalAssets": 3, "activeAssets": 2, "inactiveAssets": 1,
                       "withDevices": 1, "overdueService": 1,
                       "totalMaintenanceCost": 1150.5}  # fmt: skip
    window = {"fromUtc": "2026-02-01T00:00:00Z", "toUtc": "2026-04-01T00:00:00Z"}
    performance = api.client.get("/api/v1/reporting/service-performance", params=window,
                                 headers=headers).json()  # fmt: skip
    assert performance == {"totalVisits": 3, "completedVisits": 1, "openVisits": 2,
                           "estimatedCost": 140, "actualCost": 150.5}  # fmt: skip
    snake = api.client.get("/v1/reporting/service-performance",
                           params={"from": "2024-06-01T00:00:00Z", "to": "2025-06-01T00:00:00Z"},
                           headers=headers).json()["data"]  # fmt: skip
    assert (snake["total_visits"], snake["actual_cost"]) == (1, 1000)
    long = {"fromUtc": "2025-01-01T00:00:00Z", "toUtc": "2026-01-03T00:00:00Z"}
    error_of(api.client.get("/api/v1/reporting/service-performance", params=long,
                            headers=headers), 400, "invalid_request")  # fmt: skip


def test_telemetry_daily_counts_and_averages_each_device_s_readings_per_day(api):
    headers = api.key("devices.write", "telemetry.write", "reporting.read")
    fridge = post(api, headers, "/devices", {"name": "Fridge", "type": "http"})["id"]
    other = post(api, headers, "/devices", {"name": "Other", "type": "http"})["id"]
    readings = [
        {"device_id": fridge, "metric": "temperature", "ts": "2026-05-13T01:00:00Z", "value": 10},
        {"device_id": fridge, "metric": "temperature", "ts": "2026-05-13T23:00:00Z", "value": 20},
        {"device_id": fridge, "metric": "humidity", "ts": "2026-05-13T12:00:00Z", "value": 50},
        {"device_id": fridge, "metric": "temperature", "ts": "2026-05-14T00:00:00Z", "value": 30},
        {"device_id": other, "metric": "temperature", "ts": "2026-05-13T12:00:00Z", "value": 99},
        {"device_id": fridge, "metric": "temperature", "ts": "2026-06-20T00:00:00Z", "value": 0},
    ]
    answer = api.client.post("/v1/telemetry/ingest", json={"readings": readings}, headers=headers)
    assert answer.status_code == 200, answer.text
    window = {"fromUtc": "2026-05-01T00:00:00Z", "toUtc": "2026-06-01T00:00:00Z"}
    days = api.client.get(
        "/api/v1/reporting/telemetry-daily", params={**window, "deviceId": fridge}, headers=headers
    ).json()
    assert days == [
        {"deviceId": fridge, "date": "2026-05-13T00:00:00.000Z", "samples": 3,
         "averageHumidity": 50.0, "averageTemperature": 15.0},
        {"deviceId": fridge, "date": "2026-05-14T00:00:00.000Z", "samples": 1,
         "averageTemperature": 30.0},
    ]  # fmt: skip
    both = api.client.get("/v1/reporting/telemetry-daily",
                          params={"from": window["fromUtc"], "to": window["toUtc"]},
                          headers=headers).json()["data"]  # fmt: skip
    assert sorted((d["device_id"], d["date"][:10]) for d in both) == sorted(
        [(fridge, "2026-05-13"), (fridge, "2026-05-14"), (other, "2026-05-13")]
    )
    assert {d["average_temperature"] for d in both if d["device_id"] == other} == {99.0}
    error_of(api.client.get("/v1/reporting/telemetry-daily", params={"device_id": "dev_nope"},
                            headers=headers), 404, "not_found")  # fmt: skip
    error_of(api.client.get("/api/v1/reporting/telemetry-daily",
                            params={"fromUtc": "2025-01-01T00:00:00Z",
                                    "toUtc": "2026-01-03T00:00:00Z"},
                            headers=headers), 400, "invalid_request")  # fmt: skip


def test_a_key_limited_to_a_group_sees_only_that_group_s_assets_reports_and_visits(api):
    headers = api.key(*WRITE, "reporting.read")
    group = api.client.post("/v1/device-groups", json={"name": "North"}, headers=headers)
    north_group = group.json()["data"]["id"]
    north_device = post(api, headers, "/devices", {"name": "N", "type": "http",
                                                   "group_id": north_group})  # fmt: skip
    south_device = post(api, headers, "/devices", {"name": "S", "type": "http"})
    north = post(api, headers, "/assets", {"name": "North line", "device_id": north_device["id"]})
    south = post(api, headers, "/assets", {"name": "South line", "device_id": south_device["id"]})
    assert north["group_id"] == north_group
    reports = {a["id"]: post(api, headers, "/service-reports", {"asset_id": a["id"]})["id"]
               for a in (north, south)}  # fmt: skip
    visits = {a["id"]: post(api, headers, "/service-visits",
                            {"asset_id": a["id"], "started_at": "2026-03-01T00:00:00Z",
                             "actual_cost": 10})["id"] for a in (north, south)}  # fmt: skip
    device_report = post(api, headers, "/service-reports", {"device_id": south_device["id"]})

    limited = api.key(*READ, "assets.write", "service_reports.write", groups=(north_group,))
    ids = lambda path: [r["id"] for r in api.client.get(path, headers=limited).json()["data"]]  # noqa: E731
    assert ids("/api/v1/assets") == [north["id"]]
    assert ids("/api/v1/service-reports") == [reports[north["id"]]]
    assert ids("/api/v1/service-visits") == [visits[north["id"]]]
    for url in (
        f"/v1/assets/{south['id']}",
        f"/v1/service-reports/{reports[south['id']]}",
        f"/v1/service-reports/{device_report['id']}",
        f"/v1/service-visits/{visits[south['id']]}",
        f"/v1/assets/{south['id']}/children",
    ):
        error_of(api.client.get(url, headers=limited), 404, "not_found")
    summary = api.client.get("/api/v1/reporting/assets-summary", headers=limited).json()
    assert (summary["totalAssets"], summary["totalMaintenanceCost"]) == (1, 10)
    error_of(api.client.post("/v1/service-reports", json={"asset_id": south["id"]},
                             headers=limited), 404, "not_found")  # fmt: skip
    error_of(api.client.post("/v1/assets", json={"name": "Nowhere"}, headers=limited), 422,
             "validation_failed")  # fmt: skip
    inside = api.client.post("/v1/assets", json={"name": "Here", "group_id": north_group},
                             headers=limited)  # fmt: skip
    assert inside.status_code == 201, inside.text


def test_a_key_limited_to_customers_sees_only_those_customers_and_their_assets(api):
    headers = api.key(*WRITE)
    mine = post(api, headers, "/customers", {"name": "Acme"})
    theirs = post(api, headers, "/customers", {"name": "Beta"})
    acme_asset = post(api, headers, "/assets", {"name": "Acme press", "customer_id": mine["id"]})
    post(api, headers, "/assets", {"name": "Beta press", "customer_id": theirs["id"]})
    post(api, headers, "/appointments", {"title": "Beta visit", "customer_id": theirs["id"],
                                         "starts_at": "2026-06-01T09:00:00Z"})  # fmt: skip
    limited = api.key(*READ, "customers.write", customers=(mine["id"],))
    listed = api.client.get("/api/v1/customers", headers=limited).json()["data"]
    assert [c["customerId"] for c in listed] == [mine["id"]]
    error_of(api.client.get(f"/v1/customers/{theirs['id']}", headers=limited), 404, "not_found")
    assets = api.client.get("/api/v1/assets", headers=limited).json()["data"]
    assert [a["assetId"] for a in assets] == [acme_asset["id"]]
    assert api.client.get("/v1/appointments", headers=limited).json()["data"] == []
    error_of(api.client.post("/v1/customers", json={"name": "New"}, headers=limited), 422,
             "validation_failed")  # fmt: skip
    renamed = api.client.patch(f"/v1/customers/{mine['id']}", json={"name": "Acme AG"},
                               headers=limited)  # fmt: skip
    assert renamed.status_code == 200, renamed.text
    error_of(api.client.patch(f"/v1/customers/{theirs['id']}", json={"name": "x"},
                              headers=limited), 404, "not_found")  # fmt: skip


def test_an_asset_whose_device_is_deleted_no_longer_counts_as_with_a_device(api):
    headers = api.key(*WRITE, "reporting.read")
    device = post(api, headers, "/devices", {"name": "Sensor", "type": "http"})
    post(api, headers, "/assets", {"name": "A", "device_id": device["id"]})
    summary = lambda: api.client.get("/v1/reporting/assets-summary", headers=headers).json()  # noqa: E731
    assert summary()["data"]["with_devices"] == 1
    assert api.client.delete(f"/v1/devices/{device['id']}", headers=headers).status_code == 204
    after = summary()["data"]
    assert (after["with_devices"], after["total_assets"]) == (0, 1)
