"""Maintenance records across the uplink: master data made upstream is pulled here, and the
service reports and visits technicians make here reach the upstream exactly once."""

from __future__ import annotations

from edge.maintenance import KINDS
from sync.records import PUSHED, body
from tests.sync.test_agent import pair, wait_for

__all__ = ["pair"]


def _got(gw, headers, path: str):
    answer = gw.client.get(path, headers=headers)
    return answer.json()["data"] if answer.status_code == 200 else None


def test_master_data_made_upstream_is_pulled_changed_and_deleted_here(pair):
    downstream, upstream, up = pair
    down = downstream()
    post = lambda path, b: upstream.client.post(f"/v1{path}", json=b, headers=up).json()["data"]  # noqa: E731
    customer = post("/customers", {"name": "Acme", "external_system": "sap"})
    vendor = post("/vendors", {"name": "Bearings Ltd"})
    part = post("/inventory/parts", {"name": "Bearing", "vendor_id": vendor["id"]})
    line = post("/assets", {"name": "Line 4", "customer_id": customer["id"],
                            "next_service_at": "2026-07-01T00:00:00Z"})  # fmt: skip
    pump = post("/assets", {"name": "Pump", "parent_id": line["id"]})
    visit = post("/appointments", {"title": "Check", "asset_id": line["id"],
                                   "starts_at": "2026-06-01T09:00:00Z"})  # fmt: skip
    for path, made in (("/customers", customer), ("/vendors", vendor), ("/inventory/parts", part),
                       ("/assets", line), ("/assets", pump), ("/appointments", visit)):  # fmt: skip
        here = wait_for(lambda p=path, m=made: _got(down, down.headers, f"/v1{p}/{m['id']}"),
                        what=f"{path} pulled")  # fmt: skip
        assert {k: v for k, v in here.items() if k not in ("etag", "created_at", "updated_at")} == {
            k: v for k, v in made.items() if k not in ("etag", "created_at", "updated_at")
        }
    children = _got(down, down.headers, f"/v1/assets/{line['id']}/children")
    assert [c["id"] for c in children] == [pump["id"]]

    renamed = upstream.client.patch(f"/v1/assets/{line['id']}", json={"is_active": False},
                                    headers=up)  # fmt: skip
    assert renamed.is_success
    assert upstream.client.delete(f"/v1/appointments/{visit['id']}", headers=up).status_code == 204
    wait_for(lambda: _got(down, down.headers, f"/v1/assets/{line['id']}")["is_active"] is False,
             what="the change pulled")  # fmt: skip
    wait_for(lambda: _got(down, down.headers, f"/v1/appointments/{visit['id']}") is None,
             what="the deletion pulled")  # fmt: skip


def test_a_service_report_and_visit_made_here_reach_the_upstream_once(pair):
    downstream, upstream, up = pair
    down = downstream()
    vendor = upstream.client.post("/v1/vendors", json={"name": "V"}, headers=up).json()["data"]
    part = upstream.client.post("/v1/inventory/parts", json={"name": "Belt",
                                "vendor_id": vendor["id"]}, headers=up).json()["data"]  # fmt: skip
    asset = upstream.client.post("/v1/assets", json={"name": "Fan"}, headers=up).json()["data"]
    wait_for(lambda: _got(down, down.headers, f"/v1/inventory/parts/{part['id']}"), what="part")
    wait_for(lambda: _got(down, down.headers, f"/v1/assets/{asset['id']}"), what="the asset")
    local = down.client.post("/v1/devices", json={"name": "Here", "type": "http"},
                             headers=down.headers).json()["data"]  # fmt: skip
    visit = down.client.post("/api/v1/service-visits", headers=down.headers, json={
        "assetId": asset["id"], "startedAt": "2026-05-13T08:00:00Z", "status": "completed",
        "actualCost": 120.0})  # fmt: skip
    assert visit.status_code == 201, visit.text
    report = down.client.post(
        "/api/v1/service-reports",
        headers=down.headers,
        json={
            "assetId": asset["id"],
            "deviceId": local["id"],
            "state": 2,
            "technician": "Kim",
            "visitId": visit.json()["id"],
            "partsUsed": [{"partId": part["id"], "quantity": 1}],
        },
    )
    assert report.status_code == 201, report.text
    report_id = report.json()["serviceReportId"]

    there = wait_for(lambda: _got(upstream, up, f"/v1/service-reports/{report_id}"),
                     what="the report upstream")  # fmt: skip
    here = _got(down, down.headers, f"/v1/service-reports/{report_id}")
    assert {k: here[k] for k in ("asset_id", "device_id", "state_text", "created_on",
                                 "parts_used", "visit_id")} == {
        k: there[k] for k in ("asset_id", "device_id", "state_text", "created_on", "parts_used",
                              "visit_id")}  # fmt: skip
    wait_for(lambda: down.runtime.store.unpushed_records() == [], what="marked pushed")
    # A resend after a crash between the upstream's answer and the mark: the same create.
    store = down.runtime.store
    record = store.record(store.organization.id, "service_reports", report_id)
    resent = upstream.client.post(
        f"/v1{PUSHED['service_reports']}", json=body(KINDS["service_reports"], record), headers=up
    )
    assert resent.status_code == 200, resent.text
    reports = upstream.client.get("/v1/service-reports", headers=up).json()["data"]
    visits = upstream.client.get("/v1/service-visits", headers=up).json()["data"]
    assert [r["id"] for r in reports] == [report_id]
    assert [(v["id"], v["actual_cost"]) for v in visits] == [(visit.json()["id"], 120.0)]
    summary = upstream.client.get("/v1/reporting/assets-summary", headers=up).json()["data"]
    assert summary["total_maintenance_cost"] == 120.0


def test_a_report_whose_answer_is_lost_is_resent_and_still_stored_once(pair, fault_proxy):
    downstream, upstream, up = pair
    proxy = fault_proxy(upstream.url)
    down = downstream(upstream_url=proxy.url + "/v1", timeout_s=1.0)
    asset = upstream.client.post("/v1/assets", json={"name": "Fan"}, headers=up).json()["data"]
    wait_for(lambda: _got(down, down.headers, f"/v1/assets/{asset['id']}"), what="the asset")
    # Each way 0.7 s: the create reaches the upstream, its answer comes after the 1 s timeout.
    proxy.delay_s = 0.7
    made = down.client.post("/v1/service-reports", json={"asset_id": asset["id"], "state": 2},
                            headers=down.headers).json()["data"]  # fmt: skip
    wait_for(lambda: _got(upstream, up, f"/v1/service-reports/{made['id']}"), what="it upstream")
    proxy.delay_s = 0.0
    wait_for(lambda: down.runtime.store.unpushed_records() == [], what="marked pushed")
    sent = [r for r in proxy.requests if (r.method, r.target) == ("POST", "/v1/service-reports")]
    assert len(sent) >= 2, sent
    reports = upstream.client.get("/v1/service-reports", headers=up).json()["data"]
    assert [r["id"] for r in reports] == [made["id"]]
