"""Service pages over real HTTP: service reports made on site through the UI are stored for
the sync agent and served by the API; visits are made and changed; appointments are read."""

from __future__ import annotations

import re
import time

import pytest

from edge import ids
from edge import settings as settings_mod
from edge.models import now_ms
from tests.sync.conftest import GENEROUS_API, fault_proxy, upstream_process
from tests.ui.conftest import Ui

__all__ = ["fault_proxy", "upstream_process"]

PAGES = (
    "/service",
    "/service/reports/new",
    "/service/visits",
    "/service/visits/new",
    "/service/appointments",
)


def _master_data(ui):
    store, org = ui.store, ui.store.organization.id
    asset, _ = store.create_record(org, "assets", {"name": "Chiller 2", "location": "Roof"})
    gasket, _ = store.create_record(org, "parts", {"name": "Gasket", "part_number": "G-12"})
    filter_, _ = store.create_record(org, "parts", {"name": "Air filter"})
    return asset, gasket, filter_


def _report_form(ui, client, asset, part):
    page = client.get("/service/reports/new").text
    [report_id] = re.findall(r'name="id" value="(svr_[^"]+)"', page)
    return {
        "_csrf": ui.csrf(client),
        "id": report_id,
        "asset_id": asset.id,
        "state": "2",
        "notes": "Replaced the gasket; no leak after 10 min.",
        "part_1": part.id,
        "qty_1": "2",
    }


@pytest.mark.parametrize("path", PAGES)
def test_each_service_page_is_whole_without_htmx_and_a_fragment_with_it(ui, path):
    _master_data(ui)
    client = ui.signed_in()
    full = client.get(path)
    assert full.status_code == 200, full.text
    assert full.text.lstrip().startswith("<!doctype html>") and "<h1" in full.text
    assert 'href="/service" aria-current="page"' in full.text  # in the navigation
    part = client.get(path, headers={"HX-Request": "true"})
    assert part.status_code == 200
    assert "<html" not in part.text and "<h1" in part.text


def test_a_service_report_made_in_the_ui_is_stored_for_sync_and_served_by_the_api(ui):
    asset, gasket, _ = _master_data(ui)
    store, org = ui.store, ui.store.organization.id
    client = ui.signed_in("tech", "technician")
    form = _report_form(ui, client, asset, gasket)
    assert "Gasket (G-12)" in client.get("/service/reports/new").text
    ask = client.post("/service/reports", data=form)
    assert ask.status_code == 200 and "Save this service report on the gateway?" in ask.text
    assert store.record_page(org, "service_reports").items == []
    done = client.post("/service/reports", data={**form, "confirmed": "yes"})
    assert (done.status_code, done.headers["location"]) == (303, "/service")
    [report] = store.record_page(org, "service_reports").items
    assert report.id == form["id"]
    assert report.fields["asset_id"] == asset.id and report.fields["state"] == 2
    assert report.fields["parts_used"] == [{"part_id": gasket.id, "quantity": 2.0}]
    assert report.fields["technician"] == "tech"
    # Waiting in the outbox for the sync agent.
    assert report.id in {r.id for r in store.unpushed_records()}
    # The same form sent again (say, after a dropped connection) makes no second report.
    again = client.post("/service/reports", data={**form, "confirmed": "yes"})
    assert again.status_code == 303
    assert len(store.record_page(org, "service_reports").items) == 1
    listed = client.get("/service").text
    assert "Service report saved" in listed
    assert "Chiller 2" in listed and "Completed" in listed and "2 \u00d7 Gasket" in listed
    assert '<span class="badge stale">waiting</span>' in listed
    _, secret = store.create_api_key(org, "t", ["service_reports.read"])
    api = ui.gateway.client.get(
        "/v1/service-reports", headers={"Authorization": f"Bearer {secret}"}
    ).json()["data"]
    assert [(r["id"], r["state_text"], r["notes"]) for r in api] == [
        (report.id, "Completed", form["notes"])
    ]


def test_a_refused_report_comes_back_as_typed_with_the_reason(ui):
    asset, gasket, _ = _master_data(ui)
    client = ui.signed_in()
    form = {**_report_form(ui, client, asset, gasket), "confirmed": "yes"}
    nothing = client.post("/service/reports", data={**form, "asset_id": ""})
    assert nothing.status_code == 422
    assert "names an asset_id or a device_id" in nothing.text
    assert "no leak after 10 min" in nothing.text and f'value="{form["id"]}"' in nothing.text
    bad = client.post("/service/reports", data={**form, "qty_1": "lots"})
    assert bad.status_code == 422 and "quantity of part 1 must be a number" in bad.text
    unknown = client.post("/service/reports", data={**form, "part_1": "prt_nope"})
    assert unknown.status_code == 422 and "prt_nope" in unknown.text
    assert ui.store.record_page(ui.store.organization.id, "service_reports").items == []


def test_the_report_list_filters_by_asset_device_and_state(ui):
    asset, _, _ = _master_data(ui)
    store, org = ui.store, ui.store.organization.id
    other, _ = store.create_record(org, "assets", {"name": "Boiler 1"})
    for made_for, notes, state in ((asset, "first", 0), (other, "second", 2)):
        fields = {"asset_id": made_for.id, "notes": notes, "state": state}
        store.create_record(org, "service_reports", fields)
    client = ui.signed_in("watcher", "viewer")
    every = client.get("/service").text
    assert "first" in every and "second" in every
    mine = client.get("/service", params={"asset": asset.id}).text
    assert "first" in mine and "second" not in mine
    done = client.get("/service", params={"state": "2"}, headers={"HX-Request": "true"}).text
    assert "second" in done and "first" not in done
    assert "No service report matches." in client.get("/service", params={"state": "3"}).text


def test_a_visit_is_made_then_changed_and_a_stale_change_is_refused(ui):
    asset, _, _ = _master_data(ui)
    store, org = ui.store, ui.store.organization.id
    client = ui.signed_in("tech", "technician")
    form = {
        "_csrf": ui.csrf(client),
        "asset_id": asset.id,
        "started_at": "2026-05-24T08:30",
        "status": "open",
        "estimated_cost": "120",
        "notes": "Annual check",
    }
    assert "Save this service visit?" in client.post("/service/visits", data=form).text
    made = client.post("/service/visits", data={**form, "confirmed": "yes"})
    assert (made.status_code, made.headers["location"]) == (303, "/service/visits")
    [visit] = store.record_page(org, "service_visits").items
    assert visit.fields["started_at"] == 1779611400000  # 2026-05-24 08:30 UTC
    assert (visit.fields["technician"], visit.fields["estimated_cost"]) == ("tech", 120.0)
    page = client.get(f"/service/visits/{visit.id}").text
    assert 'name="version" value="1"' in page and "Annual check" in page
    change = {
        "_csrf": form["_csrf"],
        "version": "1",
        "status": "completed",
        "ended_at": "2026-05-24T10:00",
        "actual_cost": "99.5",
        "confirmed": "yes",
    }
    assert client.post(f"/service/visits/{visit.id}", data=change).status_code == 303
    changed = store.record(org, "service_visits", visit.id)
    assert changed.fields["status"] == "completed" and changed.fields["actual_cost"] == 99.5
    assert changed.fields["ended_at"] == 1779616800000
    assert changed.id in {r.id for r in store.unpushed_records()}
    stale = client.post(f"/service/visits/{visit.id}", data={**change, "status": "open"})
    assert stale.status_code == 422 and "someone changed this visit meanwhile" in stale.text
    assert store.record(org, "service_visits", visit.id).fields["status"] == "completed"
    listed = client.get("/service/visits").text
    assert "completed" in listed and "99.5" in listed and "Chiller 2" in listed
    bad = client.post("/service/visits", data={**form, "started_at": "soon", "confirmed": "yes"})
    assert bad.status_code == 422 and "started must be a date and time" in bad.text


def test_appointments_from_the_upstream_are_listed(ui):
    asset, _, _ = _master_data(ui)
    store, org = ui.store, ui.store.organization.id
    planned = {"title": "Quarterly filter change", "starts_at": now_ms() + 86_400_000,
               "asset_id": asset.id}  # fmt: skip
    store.upsert_record(org, "appointments", "apt_1", planned, False)
    client = ui.signed_in("watcher", "viewer")
    page = client.get("/service/appointments").text
    assert "Quarterly filter change" in page and "Chiller 2" in page and "planned" in page


@pytest.mark.parametrize(
    ("role", "method", "path", "allowed"),
    [
        ("viewer", "GET", "/service", True),
        ("viewer", "GET", "/service/visits", True),
        ("viewer", "GET", "/service/appointments", True),
        ("viewer", "GET", "/service/reports/new", False),
        ("viewer", "POST", "/service/reports", False),
        ("viewer", "GET", "/service/visits/new", False),
        ("viewer", "POST", "/service/visits", False),
        ("technician", "POST", "/service/reports", True),
        ("technician", "POST", "/service/visits", True),
        ("admin", "POST", "/service/reports", True),
    ],
)
def test_viewers_read_service_pages_and_technicians_and_admins_make_records(
    ui, role, method, path, allowed
):
    client = ui.signed_in(f"someone-{role}", role)
    answer = client.request(method, path, data={"_csrf": ui.csrf(client)} if method == "POST"
                            else None)  # fmt: skip
    if allowed:
        assert answer.status_code == 200, answer.text  # a page, or the confirmation
    else:
        assert answer.status_code == 403 and "may not do this" in answer.text


def test_service_forms_need_the_sessions_csrf_token(ui):
    asset, gasket, _ = _master_data(ui)
    client = ui.signed_in()
    form = {**_report_form(ui, client, asset, gasket), "confirmed": "yes"}
    for token in (None, "made-up"):
        sent = {k: v for k, v in form.items() if k != "_csrf"} | ({"_csrf": token} if token else {})
        for path in ("/service/reports", "/service/visits"):
            answer = client.post(path, data=sent)
            assert answer.status_code == 403 and "did not come from this gateway" in answer.text
    assert ui.store.record_page(ui.store.organization.id, "service_reports").items == []


def _until(check, what: str, timeout_s: float = 30.0):
    deadline = time.monotonic() + timeout_s
    while not (found := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)
    return found


@pytest.mark.slow
def test_a_report_made_while_the_uplink_is_down_reaches_the_upstream_once_it_is_back(
    upstream_process, fault_proxy, gateway_factory, tmp_path
):
    upstream = upstream_process()
    proxy = fault_proxy(upstream.url)
    sync = {"upstream_url": f"{proxy.url}/v1", "api_key": upstream.key, "idle_s": 0.05,
            "pull_interval_s": 0.3, "timeout_s": 2.0, "backoff_max_s": 0.5}  # fmt: skip
    settings = settings_mod.load(
        None, {}, data_dir=str(tmp_path / "down"), http={"host": "127.0.0.1", "port": 0},
        gateway={"organization": "Downstream"}, api=dict(GENEROUS_API), sync=sync,
    )  # fmt: skip
    ui = Ui(gateway_factory(settings_=settings))
    made = upstream.client.post("/v1/assets", json={"name": "Chiller 2"})
    asset = made.json()["data"]
    org = ui.store.organization.id
    _until(lambda: ui.store.record_page(org, "assets").items, "the asset pulled")
    proxy.mode = "refuse"  # the plant room has no uplink
    client = ui.signed_in("tech", "technician")
    form = {
        "_csrf": ui.csrf(client),
        "id": ids.new_id("svr"),
        "asset_id": asset["id"],
        "state": "2",
        "notes": "Made offline",
        "confirmed": "yes",
    }
    assert client.post("/service/reports", data=form).status_code == 303
    time.sleep(1.0)
    assert [r.id for r in ui.store.unpushed_records()] == [form["id"]]
    assert '<span class="badge stale">waiting</span>' in client.get("/service").text
    proxy.mode = "pass"
    there = _until(lambda: upstream.client.get(f"/v1/service-reports/{form['id']}").json()
                   .get("data"), "the report upstream")  # fmt: skip
    assert (there["notes"], there["technician"], there["state_text"]) == (
        "Made offline", "tech", "Completed")  # fmt: skip
    _until(lambda: ui.store.unpushed_records() == [], "the report marked pushed")
    assert '<span class="badge ok">sent</span>' in client.get("/service").text
    for c in ui.clients:
        c.close()
