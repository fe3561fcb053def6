"""Maintenance records across the uplink, with a second gateway process as the upstream
behind a fault proxy: master data made upstream is pulled here, and the service reports and
visits technicians make here reach the upstream exactly once, also when the answer is lost
or the gateway is killed between the upstream's commit and its own."""

from __future__ import annotations

from typing import Any

import pytest

from edge import settings as settings_mod
from tests.sync.conftest import GENEROUS_API
from tests.sync.test_agent import wait_for

TIMES = ("etag", "created_at", "updated_at")


def _got(client, path: str, headers: dict[str, str] | None = None) -> Any:
    answer = client.get(path, headers=headers or {})
    return answer.json()["data"] if answer.status_code == 200 else None


@pytest.fixture
def link(upstream_process, fault_proxy, gateway_factory, tmp_path):
    """(upstream process, proxy, start a downstream gateway syncing through the proxy)."""
    upstream = upstream_process()
    proxy = fault_proxy(upstream.url)

    def downstream(**sync: Any):
        quick = {"upstream_url": f"{proxy.url}/v1", "api_key": upstream.key, "idle_s": 0.05,
                 "pull_interval_s": 0.3, "timeout_s": 5.0, "backoff_max_s": 1.0}  # fmt: skip
        settings = settings_mod.load(
            None, {}, data_dir=str(tmp_path / "down"), http={"host": "127.0.0.1", "port": 0},
            gateway={"organization": "Downstream"}, api=dict(GENEROUS_API),
            sync={**quick, **sync},
        )  # fmt: skip
        gw = gateway_factory(settings_=settings)
        _, key = gw.runtime.store.create_api_key(gw.runtime.store.organization.id, "t", ["admin"])
        gw.headers = {"Authorization": f"Bearer {key}"}
        return gw

    return upstream, proxy, downstream


def _made_upstream(upstream, path: str, body: dict) -> dict:
    answer = upstream.client.post(f"/v1{path}", json=body)
    assert answer.status_code == 201, answer.text
    return answer.json()["data"]


def _posts(proxy) -> list:
    return [r for r in proxy.requests if (r.method, r.target) == ("POST", "/v1/service-reports")]


def test_master_data_made_upstream_is_pulled_changed_and_deleted_here(link):
    upstream, _, downstream = link
    down = downstream()
    customer = _made_upstream(upstream, "/customers", {"name": "Acme", "external_system": "sap"})
    vendor = _made_upstream(upstream, "/vendors", {"name": "Bearings Ltd"})
    part = _made_upstream(upstream, "/inventory/parts", {"name": "Bearing",
                                                        "vendor_id": vendor["id"]})  # fmt: skip
    line = _made_upstream(
        upstream,
        "/assets",
        {
            "name": "Line 4",
            "customer_id": customer["id"],
            "next_service_at": "2026-07-01T00:00:00Z",
        },
    )
    pump = _made_upstream(upstream, "/assets", {"name": "Pump", "parent_id": line["id"]})
    visit = _made_upstream(
        upstream,
        "/appointments",
        {"title": "Check", "asset_id": line["id"], "starts_at": "2026-06-01T09:00:00Z"},
    )
    for path, made in (("/customers", customer), ("/vendors", vendor), ("/inventory/parts", part),
                       ("/assets", line), ("/assets", pump), ("/appointments", visit)):  # fmt: skip
        here = wait_for(lambda p=path, m=made: _got(down.client, f"/v1{p}/{m['id']}", down.headers),
                        what=f"{path} pulled")  # fmt: skip
        assert {k: v for k, v in here.items() if k not in TIMES} == {
            k: v for k, v in made.items() if k not in TIMES
        }
    children = _got(down.client, f"/v1/assets/{line['id']}/children", down.headers)
    assert [c["id"] for c in children] == [pump["id"]]

    changed = upstream.client.patch(f"/v1/assets/{line['id']}", json={"is_active": False})
    assert changed.is_success
    assert upstream.client.delete(f"/v1/appointments/{visit['id']}").status_code == 204
    wait_for(lambda: _got(down.client, f"/v1/assets/{line['id']}", down.headers)["is_active"]
             is False, what="the change pulled")  # fmt: skip
    wait_for(lambda: _got(down.client, f"/v1/appointments/{visit['id']}", down.headers) is None,
             what="the deletion pulled")  # fmt: skip


def test_a_service_report_and_visit_made_here_reach_the_upstream_once(link):
    upstream, proxy, downstream = link
    down = downstream()
    vendor = _made_upstream(upstream, "/vendors", {"name": "V"})
    part = _made_upstream(upstream, "/inventory/parts", {"name": "Belt", "vendor_id": vendor["id"]})
    asset = _made_upstream(upstream, "/assets", {"name": "Fan"})
    wait_for(lambda: _got(down.client, f"/v1/inventory/parts/{part['id']}", down.headers),
             what="the part pulled")  # fmt: skip
    wait_for(lambda: _got(down.client, f"/v1/assets/{asset['id']}", down.headers),
             what="the asset pulled")  # fmt: skip
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

    there = wait_for(lambda: _got(upstream.client, f"/v1/service-reports/{report_id}"),
                     what="the report upstream")  # fmt: skip
    here = _got(down.client, f"/v1/service-reports/{report_id}", down.headers)
    assert {k: v for k, v in here.items() if k not in TIMES} == {
        k: v for k, v in there.items() if k not in TIMES
    }
    wait_for(lambda: down.runtime.store.unpushed_records() == [], what="both marked pushed")
    assert len(_posts(proxy)) == 1
    reports = upstream.client.get("/v1/service-reports").json()["data"]
    visits = upstream.client.get("/v1/service-visits").json()["data"]
    assert [r["id"] for r in reports] == [report_id]
    assert [(v["id"], v["actual_cost"]) for v in visits] == [(visit.json()["id"], 120.0)]
    # The device born here was registered upstream before the report that names it.
    assert _got(upstream.client, f"/v1/devices/{local['id']}")["id"] == local["id"]
    summary = _got(upstream.client, "/v1/reporting/assets-summary")
    assert summary["total_maintenance_cost"] == 120.0


def test_a_report_whose_answer_is_lost_is_resent_and_still_stored_once(link):
    upstream, proxy, downstream = link
    down = downstream(timeout_s=1.0)
    asset = _made_upstream(upstream, "/assets", {"name": "Fan"})
    wait_for(lambda: _got(down.client, f"/v1/assets/{asset['id']}", down.headers),
             what="the asset pulled")  # fmt: skip
    # Each way 0.7 s: the create reaches the upstream, its answer comes after the 1 s timeout.
    proxy.delay_s = 0.7
    made = down.client.post("/v1/service-reports", json={"asset_id": asset["id"], "state": 2},
                            headers=down.headers).json()["data"]  # fmt: skip
    wait_for(lambda: _got(upstream.client, f"/v1/service-reports/{made['id']}"),
             what="the report upstream")  # fmt: skip
    proxy.delay_s = 0.0
    wait_for(lambda: down.runtime.store.unpushed_records() == [], what="marked pushed")
    assert len(_posts(proxy)) >= 2
    reports = upstream.client.get("/v1/service-reports").json()["data"]
    assert [r["id"] for r in reports] == [made["id"]]


def test_a_gateway_killed_before_it_hears_the_answer_resends_and_it_is_stored_once(
    upstream_process, fault_proxy
):
    upstream = upstream_process()
    proxy = fault_proxy(upstream.url)
    sync = {"upstream_url": f"{proxy.url}/v1", "api_key": upstream.key, "idle_s": 0.05,
            "pull_interval_s": 0.3, "timeout_s": 10.0, "backoff_max_s": 1.0}  # fmt: skip
    down = upstream_process(gateway={"organization": "Downstream"}, sync=sync)
    asset = _made_upstream(upstream, "/assets", {"name": "Fan"})
    wait_for(lambda: _got(down.client, f"/v1/assets/{asset['id']}"), what="the asset pulled")
    # The answer takes 2 s to come back: long enough to kill the gateway once the upstream
    # holds the report, and before the gateway hears so.
    proxy.delay_s = 2.0
    made = down.client.post("/v1/service-reports", json={"asset_id": asset["id"]}).json()["data"]
    wait_for(lambda: _got(upstream.client, f"/v1/service-reports/{made['id']}"),
             what="the report upstream")  # fmt: skip
    down.kill()
    assert len(_posts(proxy)) == 1
    proxy.delay_s = 0.0
    down.start()
    wait_for(lambda: len(_posts(proxy)) >= 2, what="the resend after the restart")
    reports = upstream.client.get("/v1/service-reports").json()["data"]
    assert [r["id"] for r in reports] == [made["id"]]
    assert _got(down.client, f"/v1/service-reports/{made['id']}")["id"] == made["id"]


def test_a_report_on_an_asset_the_upstream_lacks_waits_and_goes_once_it_has_it(link):
    upstream, proxy, downstream = link
    down = downstream()
    local = down.client.post("/v1/assets", json={"name": "Made here"},
                             headers=down.headers).json()["data"]  # fmt: skip
    made = down.client.post("/v1/service-reports", json={"asset_id": local["id"]},
                            headers=down.headers).json()["data"]  # fmt: skip

    def status() -> dict:
        return _got(down.client, "/v1/admin/sync", down.headers)

    wait_for(lambda: status()["service_records_refused"] == 1, what="the refusal counted")
    assert _got(upstream.client, f"/v1/service-reports/{made['id']}") is None
    assert down.runtime.store.unpushed_records()[0].id == made["id"]
    _made_upstream(upstream, "/assets", {"id": local["id"], "name": "Made here"})
    wait_for(lambda: _got(upstream.client, f"/v1/service-reports/{made['id']}"),
             what="the report upstream")  # fmt: skip
    wait_for(lambda: status()["service_records_refused"] == 0, what="the refusal cleared")
    assert status()["service_records_pushed"] == 1
    assert len([r for r in _posts(proxy) if r.fate == "forwarded"]) >= 2


def test_reports_held_after_a_refusal_do_not_keep_newer_ones_from_going(link, monkeypatch):
    upstream, _, downstream = link
    monkeypatch.setattr("sync.records.PAGE", 2)
    down = downstream()
    asset = _made_upstream(upstream, "/assets", {"name": "Fan"})
    local = down.client.post("/v1/assets", json={"name": "Made here"},
                             headers=down.headers).json()["data"]  # fmt: skip
    wait_for(lambda: _got(down.client, f"/v1/assets/{asset['id']}", down.headers),
             what="the asset pulled")  # fmt: skip
    for _ in range(5):
        down.client.post("/v1/service-reports", json={"asset_id": local["id"]},
                         headers=down.headers)  # fmt: skip
    made = down.client.post("/v1/service-reports", json={"asset_id": asset["id"]},
                            headers=down.headers).json()["data"]  # fmt: skip
    wait_for(lambda: _got(upstream.client, f"/v1/service-reports/{made['id']}"),
             what="the newest report upstream")  # fmt: skip
    status = _got(down.client, "/v1/admin/sync", down.headers)
    assert (status["service_records_pushed"], status["service_records_refused"]) == (1, 5)
    assert len(down.runtime.store.unpushed_records()) == 5


def test_a_visit_changed_here_after_it_was_pushed_is_changed_upstream(link):
    upstream, _, downstream = link
    down = downstream()
    asset = _made_upstream(upstream, "/assets", {"name": "Fan"})
    wait_for(lambda: _got(down.client, f"/v1/assets/{asset['id']}", down.headers),
             what="the asset pulled")  # fmt: skip
    made = down.client.post("/v1/service-visits", headers=down.headers, json={
        "asset_id": asset["id"], "started_at": "2026-05-13T08:00:00Z", "status": "open",
        "estimated_cost": 50})  # fmt: skip
    visit = made.json()["data"]
    wait_for(lambda: _got(upstream.client, f"/v1/service-visits/{visit['id']}"),
             what="the visit upstream")  # fmt: skip
    wait_for(lambda: down.runtime.store.unpushed_records() == [], what="marked pushed")
    changed = down.client.patch(
        f"/v1/service-visits/{visit['id']}",
        json={"status": "completed", "actual_cost": 65.5},
        headers={**down.headers, "If-Match": made.headers["etag"]},
    )
    assert changed.status_code == 200, changed.text
    there = wait_for(lambda: (v := _got(upstream.client, f"/v1/service-visits/{visit['id']}"))
                     and v["status"] == "completed" and v, what="the change upstream")  # fmt: skip
    assert (there["actual_cost"], there["estimated_cost"]) == (65.5, 50)
    wait_for(lambda: down.runtime.store.unpushed_records() == [], what="marked pushed again")
    assert [v["id"] for v in upstream.client.get("/v1/service-visits").json()["data"]] == [
        visit["id"]
    ]
    window = {"from": "2026-05-01T00:00:00Z", "to": "2026-06-01T00:00:00Z"}
    performance = upstream.client.get("/v1/reporting/service-performance", params=window)
    performance = performance.json()["data"]
    assert (performance["completed_visits"], performance["actual_cost"]) == (1, 65.5)
