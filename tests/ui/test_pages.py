"""Every page reads without JavaScript, htmx gets fragments, actions ask first, and each page
shows and does what it says; over real HTTP against a running gateway."""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import re
import threading
import time
from pathlib import Path

import pytest

from edge.models import Reading, now_ms
from tests.drivers.modbus.test_sunspec import sunspec_server
from tests.ui.conftest import form_token
from web import ui as ui_package

PAGES = (
    "/",
    "/devices",
    "/devices/new",
    "/alarms",
    "/alarms?view=cleared",
    "/rules",
    "/rules/new",
    "/sync",
    "/settings",
)
UI_DIR = Path(ui_package.__file__).parent


def _http_device(ui, name: str = "Tank", key: str = "temperature"):
    return ui.gateway.runtime.device_types["http"](
        ui.store, ui.store.organization.id, {"name": name, "points": [{"key": key, "unit": "°C"}]}
    )


@pytest.mark.parametrize("path", PAGES)
def test_each_page_is_whole_without_htmx_and_a_fragment_with_it(ui, path):
    client = ui.signed_in()
    full = client.get(path)
    assert full.status_code == 200 and full.headers["content-type"].startswith("text/html")
    assert full.text.lstrip().startswith("<!doctype html>") and "<h1" in full.text
    part = client.get(path, headers={"HX-Request": "true"})
    assert part.status_code == 200
    assert "<html" not in part.text and "<h1" in part.text


def test_no_page_or_static_file_names_another_host():
    texts = [p.read_text() for p in (UI_DIR / "templates").rglob("*.html")]
    texts += [(UI_DIR / "static" / name).read_text() for name in ("app.css", "app.js")]
    for text in texts:
        assert not re.search(r"(src|href|url)\s*[=(]\s*[\"']?(https?:)?//", text), text[:200]


def test_the_vendored_files_are_the_ones_recorded():
    vendor = UI_DIR / "static" / "vendor"
    table = (vendor / "VENDORED.md").read_text()
    rows = re.findall(r"^\| `([^`]+)` \|.*\| `([0-9a-f]{64})` \|$", table, re.M)
    assert {name for name, _ in rows} == {p.name for p in vendor.glob("*.js")} | {
        p.name for p in vendor.glob("*.css")
    }
    for name, digest in rows:
        assert hashlib.sha256((vendor / name).read_bytes()).hexdigest() == digest, name


def test_static_files_are_served_and_cached(ui):
    client = ui.client()
    for path in (
        "/static/app.css",
        "/static/app.js",
        "/static/vendor/htmx-2.0.11.min.js",
        "/static/vendor/uPlot-1.6.32.iife.min.js",
    ):
        answer = client.get(path)
        assert answer.status_code == 200, path
        assert "max-age=3600" in answer.headers["cache-control"]


def test_device_list_filters_by_status_type_and_text(ui):
    _http_device(ui, "Boiler sensor")
    _http_device(ui, "Chiller sensor")
    client = ui.signed_in()
    assert "Boiler sensor" in client.get("/devices").text
    found = client.get("/devices", params={"q": "chill"}).text
    assert "Chiller sensor" in found and "Boiler sensor" not in found
    assert "Boiler" not in client.get("/devices", params={"status": "online"}).text
    assert "Boiler" in client.get("/devices", params={"type": "http"}).text
    assert "No device matches." in client.get("/devices", params={"type": "modbus_tcp"}).text


def test_device_page_shows_values_quality_and_the_charts_data(ui):
    device = _http_device(ui)
    [point] = ui.store.points(ui.store.organization.id, device.id)
    now = now_ms()
    ui.store.append_readings([Reading(point.id, now - 60_000, 20.5), Reading(point.id, now, 21.25)])
    client = ui.signed_in()
    page = client.get(f"/devices/{device.id}").text
    assert "21.25" in page and "GOOD" in page.upper()
    assert "Readings</dt><dd>2</dd>" in page  # the range's summary, for reading without JS
    series = client.get(
        f"/devices/{device.id}/series", params={"point": "temperature", "range": "1h"}
    ).json()
    assert sum(v is not None for v in series["v"]) >= 1
    assert series["end"] - series["start"] == 3600
    missing = client.get(f"/devices/{device.id}/series", params={"point": "nope"})
    assert missing.status_code == 404
    gone = client.get("/devices/dev_nope")
    assert gone.status_code == 404 and "Not found" in gone.text


def test_a_pinned_point_shows_on_the_overview(ui):
    device = _http_device(ui, "Roof station", "wind_speed")
    [point] = ui.store.points(ui.store.organization.id, device.id)
    ui.store.append_readings([Reading(point.id, now_ms(), 12.75)])
    client = ui.signed_in()
    assert "12.75" not in client.get("/").text
    answer = client.post(
        f"/devices/{device.id}/pin",
        data={"_csrf": ui.csrf(client), "point_id": point.id, "on": "1"},
    )
    assert answer.status_code == 303
    overview = client.get("/").text
    assert "Roof station" in overview and "12.75" in overview and "wind_speed" in overview
    client.post(
        f"/devices/{device.id}/pin",
        data={"_csrf": ui.csrf(client), "point_id": point.id, "on": "0"},
    )
    assert "12.75" not in client.get("/").text


def test_the_wizard_tests_a_device_without_storing_it(ui, modbus_server):
    server = modbus_server({2: "eastron_sdm120"}, frozen=True)
    client = ui.signed_in()
    form = {
        "_csrf": ui.csrf(client),
        "name": "Sub-meter",
        "type": "modbus_tcp",
        "host": "127.0.0.1",
        "port": str(server.port),
        "unit_id": "2",
        "source": "profile",
        "profile": "eastron_sdm120",
    }
    answer = client.post("/devices/new/test", data=form)
    assert answer.status_code == 200
    assert "The device answers" in answer.text and 'data-point="voltage"' in answer.text
    assert 'value="Sub-meter"' in answer.text  # the form is kept
    assert ui.store.devices(ui.store.organization.id) == []
    dead = client.post("/devices/new/test", data={**form, "unit_id": "9", "timeout_s": "0.3"})
    assert "No answer" in dead.text and 'value="9"' in dead.text
    sunspec = client.post("/devices/new/test", data={**form, "source": "sunspec"})
    assert "not a SunSpec device" in sunspec.text
    bad = client.post("/devices/new/test", data={**form, "port": "not a port"})
    assert bad.status_code == 422 and "must be numbers" in bad.text


def test_adding_a_device_asks_first_then_stores_it(ui, modbus_server):
    server = modbus_server({1: "eastron_sdm120"}, frozen=True)
    client = ui.signed_in()
    form = {
        "_csrf": ui.csrf(client),
        "name": "Sub-meter",
        "type": "modbus_tcp",
        "host": "127.0.0.1",
        "port": str(server.port),
        "unit_id": "1",
        "source": "profile",
        "profile": "eastron_sdm120",
        "tags": "ahu, roof",
    }
    ask = client.post("/devices/new", data=form)
    assert "Add Sub-meter and start polling it?" in ask.text
    assert ui.store.devices(ui.store.organization.id) == []
    done = client.post("/devices/new", data={**form, "confirmed": "yes"})
    assert done.status_code == 303
    [device] = ui.store.devices(ui.store.organization.id)
    assert done.headers["location"] == f"/devices/{device.id}"
    assert (device.name, device.profile, device.tags) == (
        "Sub-meter",
        "eastron_sdm120",
        ["ahu", "roof"],
    )
    nameless = client.post("/devices/new", data={**form, "name": "", "confirmed": "yes"})
    assert nameless.status_code == 422 and "give the device a name" in nameless.text


def test_acknowledging_needs_confirmation_and_is_kept_in_the_trail(ui):
    device = _http_device(ui)
    store, org = ui.store, ui.store.organization.id
    client = ui.signed_in("tech", "technician")
    rule = {
        "_csrf": ui.csrf(client),
        "name": "Too hot",
        "kind": "threshold",
        "device_id": device.id,
        "metric": "temperature",
        "op": ">",
        "value": "80",
        "severity": "critical",
        "enabled": "1",
    }
    assert client.post("/rules", data=rule).status_code == 303
    time.sleep(2.5)  # rules are re-read every 2 s
    [point] = store.points(org, device.id)
    store.append_readings([Reading(point.id, now_ms(), 90.0)])
    deadline = time.monotonic() + 10
    while not store.alarm_page(org, "active").items and time.monotonic() < deadline:
        time.sleep(0.1)
    [alarm] = store.alarm_page(org, "active").items
    assert "Too hot" in client.get("/").text  # on the overview too
    ask = client.post(f"/alarms/{alarm.id}/ack", data={"_csrf": ui.csrf(client)})
    assert "Acknowledge this alarm?" in ask.text
    assert store.alarm(org, alarm.id).acked_at is None
    done = client.post(
        f"/alarms/{alarm.id}/ack", data={"_csrf": ui.csrf(client), "confirmed": "yes"}
    )
    assert done.headers["location"] == "/alarms"
    page = client.get("/alarms").text
    assert "Alarm acknowledged." in page and "ack</strong> by tech" in page
    again = client.post(
        f"/alarms/{alarm.id}/ack", data={"_csrf": ui.csrf(client), "confirmed": "yes"}
    )
    assert again.status_code == 303 and "Not done" in client.get("/alarms").text
    client.post(f"/alarms/{alarm.id}/clear", data={"_csrf": ui.csrf(client), "confirmed": "yes"})
    history = client.get("/alarms", params={"view": "cleared"}).text
    assert "Too hot" in history and "clear</strong> by tech" in history


def test_the_rule_editor_keeps_the_form_when_refused_and_changes_a_rule(ui):
    device = _http_device(ui)
    client = ui.signed_in()
    bad = {
        "device_id": device.id,
        "_csrf": ui.csrf(client),
        "name": "Quiet",
        "kind": "no_data",
        "silence_s": "-5",
        "severity": "warning",
        "enabled": "1",
    }
    refused = client.post("/rules", data=bad)
    assert refused.status_code == 422 and 'value="Quiet"' in refused.text
    made = client.post("/rules", data={**bad, "silence_s": "300"})
    assert made.status_code == 303
    [rule] = ui.store.rule_page(ui.store.organization.id).items
    editor = client.get(f"/rules/{rule.id}").text
    assert 'value="300.0"' in editor
    stale = {**bad, "silence_s": "600", "version": "99"}
    conflict = client.post(f"/rules/{rule.id}", data=stale)
    assert conflict.status_code == 422 and "changed this rule meanwhile" in conflict.text
    changed = client.post(f"/rules/{rule.id}", data={**stale, "version": str(rule.version)})
    assert changed.status_code == 303
    assert ui.store.rule(ui.store.organization.id, rule.id).params == {"silence_s": 600.0}
    client.post(f"/rules/{rule.id}/delete", data={"_csrf": ui.csrf(client), "confirmed": "yes"})
    assert ui.store.rule_page(ui.store.organization.id).items == []


def test_quarantined_readings_are_retried_and_discarded_from_the_sync_page(ui):
    device = _http_device(ui)
    store, org = ui.store, ui.store.organization.id
    [point] = store.points(org, device.id)
    store.append_readings(
        [Reading(point.id, now_ms() - 1000, 1.0), Reading(point.id, now_ms(), 2.0)]
    )
    for first, _ in store.sync_plan(1, 2):
        store.sync_quarantine(first, 422, {"error": {"message": "metric unknown upstream"}})
    client = ui.signed_in()
    page = client.get("/sync").text
    assert "metric unknown upstream" in page and 'class="count">2<' in page
    one, two = store.quarantine_page(org, None).items
    client.post(
        f"/sync/quarantine/{one.id}/retry", data={"_csrf": ui.csrf(client), "confirmed": "yes"}
    )
    assert store.quarantined(org, one.id).retry
    ask = client.post(f"/sync/quarantine/{two.id}/discard", data={"_csrf": ui.csrf(client)})
    assert "Discard this reading for good?" in ask.text
    client.post(
        f"/sync/quarantine/{two.id}/discard", data={"_csrf": ui.csrf(client), "confirmed": "yes"}
    )
    assert [q.id for q in store.quarantine_page(org, None).items] == [one.id]
    assert any(e.type == "sync.quarantine_discarded" for e in store.events(org))


def test_the_upstream_test_says_plainly_what_answered(ui):
    client = ui.signed_in()
    _, secret = ui.store.create_api_key(ui.store.organization.id, "upstream", ["devices.read"])
    base = ui.url + "/v1"
    good = client.post(
        "/sync/test", data={"_csrf": ui.csrf(client), "url": base, "api_key": secret}
    )
    assert "answers and accepts the key" in good.text
    assert secret not in good.text  # the key is never shown back
    wrong = client.post(
        "/sync/test", data={"_csrf": ui.csrf(client), "url": base, "api_key": "sk_live_wrong"}
    )
    assert "refuses the key (HTTP 401" in wrong.text
    closed = client.post(
        "/sync/test",
        data={"_csrf": ui.csrf(client), "url": "http://127.0.0.1:9/v1", "api_key": "x"},
    )
    assert "No answer from http://127.0.0.1:9/v1" in closed.text


def test_the_backlog_history_is_sampled_for_the_sync_page(ui):
    client = ui.signed_in()
    deadline = time.monotonic() + 5
    while "No samples yet" in client.get("/sync").text and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "data-series=" in client.get("/sync").text


def test_an_export_link_downloads_the_devices_readings(ui):
    device = _http_device(ui)
    [point] = ui.store.points(ui.store.organization.id, device.id)
    ui.store.append_readings([Reading(point.id, now_ms(), 33.5)])
    client = ui.signed_in("tech", "technician")
    today = time.strftime("%Y-%m-%d", time.gmtime())
    answer = client.post(
        "/settings/export",
        data={"_csrf": ui.csrf(client), "device_id": device.id, "from": today, "to": today},
    )
    assert answer.status_code == 200
    link = re.search(r'href="([^"]+/telemetry/export/download[^"]+)"', answer.text).group(1)
    csv = ui.client().get(link.replace("&amp;", "&"))
    assert csv.status_code == 200 and "33.5" in csv.text
    wrong = client.post(
        "/settings/export",
        data={"_csrf": ui.csrf(client), "device_id": device.id, "from": today, "to": "2000-01-01"},
    )
    assert wrong.status_code == 422 and "must follow the first" in wrong.text


def test_a_new_key_is_shown_once_and_a_new_user_can_sign_in(ui):
    client = ui.signed_in()
    made = client.post(
        "/settings/keys",
        data={
            "_csrf": ui.csrf(client),
            "name": "BMS",
            "scopes": ["devices.read", "telemetry.read"],
        },
    )
    secret = re.search(r'id="secret-value">([^<]+)<', made.text).group(1)
    assert ui.store.api_key(secret).scopes == ["devices.read", "telemetry.read"]
    assert secret not in client.get("/settings").text
    none = client.post("/settings/keys", data={"_csrf": ui.csrf(client), "name": "empty"})
    assert none.status_code == 422 and "at least one scope" in none.text
    added = client.post(
        "/settings/users",
        data={
            "_csrf": ui.csrf(client),
            "username": "viewer1",
            "password": "a long passphrase",
            "role": "viewer",
        },
    )
    assert added.status_code == 303
    short = client.post(
        "/settings/users",
        data={"_csrf": ui.csrf(client), "username": "v2", "password": "short", "role": "viewer"},
    )
    assert (
        short.status_code == 422
        and 'value="v2"' in short.text
        and "short" not in re.findall(r'type="password"[^>]*value="([^"]*)"', short.text)
    )
    other = ui.client()
    token = form_token(other.get("/login").text)
    signed = other.post(
        "/login", data={"form_token": token, "username": "viewer1", "password": "a long passphrase"}
    )
    assert signed.status_code == 303


def test_an_admin_sets_a_users_password_and_their_old_sessions_end(ui):
    admin = ui.signed_in()
    tech = ui.signed_in("tech", "technician")
    tech_id = next(u.id for u in ui.store.users(ui.store.organization.id) if u.username == "tech")
    done = admin.post(
        f"/settings/users/{tech_id}/password",
        data={"_csrf": ui.csrf(admin), "password": "a brand new passphrase"},
    )
    assert done.status_code == 303
    assert tech.get("/").status_code == 303
    assert ui.store.authenticate("tech", "a brand new passphrase") is not None
    assert ui.store.authenticate("tech", "correct horse battery") is None


def test_sites_show_on_the_overview_and_filter_the_device_list(ui):
    store, org = ui.store, ui.store.organization.id
    roof = store.create_site(org, "Roof plant")
    basement = store.create_site(org, "Basement")
    on_roof = _http_device(ui, "Roof fan")
    store.update_device(org, on_roof.id, site_id=roof.id)
    below = _http_device(ui, "Sump pump")
    store.update_device(org, below.id, site_id=basement.id)
    client = ui.signed_in()
    overview = client.get("/").text
    assert "Roof plant" in overview and "Basement" in overview
    listed = client.get("/devices", params={"site": roof.id}).text
    assert "Roof fan" in listed and "Sump pump" not in listed


def test_reloading_a_modbus_devices_configuration_is_confirmed_and_audited(ui, modbus_server):
    server = modbus_server({1: "eastron_sdm120"}, frozen=True)
    store, org = ui.store, ui.store.organization.id
    device = ui.gateway.runtime.device_types["modbus_tcp"](
        store,
        org,
        {
            "name": "Sub-meter",
            "type": "modbus_tcp",
            "profile": "eastron_sdm120",
            "connection": {"host": "127.0.0.1", "port": server.port},
        },
    )
    client = ui.signed_in("tech", "technician")
    deadline = time.monotonic() + 15
    while "Reload its configuration" not in client.get(f"/devices/{device.id}").text:
        assert time.monotonic() < deadline, "the device is never polled"
        time.sleep(0.3)
    ask = client.post(f"/devices/{device.id}/reload", data={"_csrf": ui.csrf(client)})
    assert "Reload the configuration of this device?" in ask.text
    done = client.post(
        f"/devices/{device.id}/reload", data={"_csrf": ui.csrf(client), "confirmed": "yes"}
    )
    assert done.status_code == 303
    assert "configuration is reloaded" in client.get(f"/devices/{device.id}").text
    assert any(
        e.type == "device.command" and e.data.get("actor") == "tech" for e in store.events(org)
    )
    http_device = _http_device(ui, "Pusher")
    refused = client.post(
        f"/devices/{http_device.id}/reload", data={"_csrf": ui.csrf(client), "confirmed": "yes"}
    )
    assert refused.status_code == 422 and "take no commands" in refused.text


def test_a_browser_gets_a_page_for_an_unknown_address_and_a_client_json(ui):
    client = ui.client()
    page = client.get("/no-such-page", headers={"Accept": "text/html,*/*"})
    assert page.status_code == 404 and "<h1>Cannot show this</h1>" in page.text
    assert client.get("/no-such-page").json()["status_code"] == 404
    api = client.get("/v1/no-such-thing", headers={"Accept": "text/html"})
    assert api.status_code == 404 and api.json()["error"]["code"] == "not_found"


@pytest.fixture
def sunspec_port():
    """A SunSpec inverter served from its own loop thread."""
    loop = asyncio.new_event_loop()
    started: concurrent.futures.Future[int] = concurrent.futures.Future()
    stop = asyncio.Event()

    async def serve() -> None:
        async with sunspec_server(40000) as port:
            started.set_result(port)
            await stop.wait()

    thread = threading.Thread(target=lambda: loop.run_until_complete(serve()), name="sunspec")
    thread.start()
    try:
        yield started.result(10)
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        loop.close()


def test_a_sunspec_inverter_is_discovered_previewed_and_stored_with_its_points(ui, sunspec_port):
    client = ui.signed_in()
    form = {
        "_csrf": ui.csrf(client),
        "name": "Inverter",
        "type": "modbus_tcp",
        "host": "127.0.0.1",
        "port": str(sunspec_port),
        "unit_id": "1",
        "source": "sunspec",
    }
    preview = client.post("/devices/new/test", data=form)
    assert "The device answers" in preview.text and 'data-point="m103_W"' in preview.text
    assert 'value="sunspec" checked' in preview.text
    done = client.post("/devices/new", data={**form, "confirmed": "yes"})
    assert done.status_code == 303
    [device] = ui.store.devices(ui.store.organization.id)
    keys = {p.key for p in ui.store.points(ui.store.organization.id, device.id)}
    assert {"m103_W", "m103_PhVphA", "m1_Md"} <= keys and device.profile is None


def test_pages_are_not_cached(ui):
    client = ui.signed_in()
    for path in ("/", "/settings", "/login"):
        assert client.get(path).headers["cache-control"] == "no-store", path
