"""The UI in a real browser: Debian's chromium, headless, driven by Playwright, on a
tablet-sized viewport against a real gateway. Each test saves screenshots for review
(tests/ui/screenshots/) and fails if the page asked any host but this one."""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from drivers.ble.simulator import DEMO_SENSORS
from edge.models import Reading, now_ms
from tests.ui.conftest import PASSWORD, SCREENSHOTS, TABLET, Tab

pytestmark = pytest.mark.slow


def _wait(condition, timeout_s: float = 20.0, step_s: float = 0.2):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(step_s)
    raise AssertionError("condition not met in time")


def test_first_run_then_every_page_reads_and_is_photographed(tab, ui):
    page = tab.page
    tab.go("/")
    page.wait_for_url(ui.url + "/setup")
    tab.shot("01-first-run")
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", PASSWORD)
    page.fill("input[name=password_again]", PASSWORD)
    page.click("button:has-text('Create the admin')")
    page.wait_for_url(ui.url + "/")
    assert page.locator("h1").first.inner_text() == ui.store.organization.name
    device = ui.gateway.runtime.device_types["http"](
        ui.store,
        ui.store.organization.id,
        {"name": "Boiler room sensor", "points": [{"key": "temperature", "unit": "°C"}]},
    )
    for path, name in (
        ("/", "02-overview"),
        ("/devices", "03-devices"),
        (f"/devices/{device.id}", "04-device"),
        ("/devices/new", "05-add-device"),
        ("/alarms", "06-alarms"),
        ("/alarms?view=cleared", "07-alarm-history"),
        ("/rules", "08-rules"),
        ("/rules/new", "09-rule-editor"),
        ("/sync", "10-sync"),
        ("/settings", "11-settings"),
    ):
        tab.go(path)
        assert page.locator("main h1").count() >= 1, path
        tab.shot(name)
    tab.go("/devices/dev_gone")
    assert "Not found" in page.locator("main h1").inner_text()
    tab.shot("13-not-found")
    page.click("button:has-text('Sign out')")
    page.wait_for_url(ui.url + "/login")
    tab.shot("12-sign-in")


def test_wizard_adds_a_simulated_meter_and_its_values_change_live(signed_in_tab, ui, modbus_server):
    server = modbus_server({3: "eastron_sdm630"})
    page = signed_in_tab.page
    signed_in_tab.go("/devices/new")
    page.fill("input[name=name]", "Main incomer")
    page.fill("input[name=host]", "127.0.0.1")
    page.fill("input[name=port]", str(server.port))
    page.fill("input[name=unit_id]", "3")
    page.select_option("select[name=profile]", "eastron_sdm630")
    page.click("button:has-text('Test connection')")
    preview = page.locator("#preview")
    preview.wait_for()
    assert "The device answers" in preview.inner_text()
    assert page.locator("#preview tr[data-point=l1_voltage]").count() == 1
    assert page.input_value("input[name=name]") == "Main incomer"  # the form is kept
    signed_in_tab.shot("20-wizard-preview")
    page.click("button:has-text('Add the device')")
    dialog = page.locator("#dialog .confirm")
    dialog.wait_for()
    assert "Add Main incomer" in dialog.inner_text()
    signed_in_tab.shot("21-wizard-confirm")
    dialog.locator("button:has-text('Yes, add it')").click()
    page.wait_for_selector("#live")
    assert page.locator("main h1").first.inner_text() == "Main incomer"
    assert "Device added" in page.locator(".flash").inner_text()
    cell = page.locator("#values tr[data-point=l1_voltage] [data-value]")

    def shown() -> str:
        text = cell.inner_text().strip() if cell.count() else "—"
        return "" if text.startswith("—") else text

    first = _wait(shown, 30)
    _wait(lambda: shown() not in ("", first), 30)  # the poll swapped in a newer value
    assert page.locator("#values tr[data-point=l1_voltage] .badge").inner_text() == "GOOD"
    page.wait_for_selector(".chart canvas", timeout=20_000)
    signed_in_tab.shot("22-device-live")


def test_a_rule_made_in_the_editor_raises_an_alarm_that_is_acknowledged(signed_in_tab, ui):
    store = ui.store
    org = store.organization.id
    device = ui.gateway.runtime.device_types["http"](
        store, org, {"name": "Tank", "points": [{"key": "temperature", "unit": "°C"}]}
    )
    page = signed_in_tab.page
    signed_in_tab.go("/rules/new")
    page.fill("input[name=name]", "Tank too hot")
    page.select_option("select[name=kind]", "no_data")  # only its own fields show
    assert page.is_visible("input[name=silence_s]")
    assert not page.is_visible("input[name=value]")
    page.select_option("select[name=kind]", "threshold")
    assert page.is_visible("input[name=value]") and not page.is_visible("input[name=silence_s]")
    page.select_option("select[name=device_id]", device.id)
    page.fill("input[name=metric]", "temperature")
    page.select_option("select[name=op]", ">")
    page.fill("input[name=value]", "80")
    page.select_option("select[name=severity]", "critical")
    page.click("button:has-text('Save the rule')")
    page.wait_for_selector("text=Rule saved")
    assert "Tank too hot" in page.locator("table").inner_text()
    [point] = store.points(org, device.id)
    time.sleep(2.5)  # the engine re-reads rules every 2 s
    store.append_readings([Reading(point.id, now_ms(), 95.0)])
    _wait(lambda: store.alarm_page(org, "active").items, 15)
    signed_in_tab.go("/alarms")
    card = page.locator("article.alarm").first
    assert "Tank too hot" in card.inner_text() or "temperature" in card.inner_text()
    signed_in_tab.shot("30-alarm-active")
    card.locator("button:has-text('Acknowledge')").click()
    page.locator("#dialog .confirm").wait_for()
    page.locator("#dialog button:has-text('Yes, ack')").click()
    page.wait_for_selector("text=Alarm acknowledged")
    assert page.locator("#dialog .confirm").count() == 0
    card = page.locator("article.alarm").first
    assert "acknowledged" in card.locator(".state").inner_text().lower()
    assert "ack by admin" in card.locator(".trail").inner_text()
    card.locator("textarea[name=text]").fill("Checked the thermostat")
    card.locator("button:has-text('Add comment')").click()
    page.wait_for_selector("text=Comment added")
    [listed] = store.alarm_page(org, "acknowledged").items
    alarm = store.alarm(org, listed.id)
    assert (alarm.acked_by, alarm.notes[-1].text) == ("admin", "Checked the thermostat")
    signed_in_tab.shot("31-alarm-acknowledged")


def test_an_api_key_is_shown_once_works_and_stops_working_when_revoked(signed_in_tab, ui):
    page = signed_in_tab.page
    signed_in_tab.go("/settings")
    page.fill("#keys input[name=name]", "BMS")
    page.check("#keys input[value='devices.read']")
    page.click("button:has-text('Create the key')")
    secret = page.locator("#secret-value").inner_text().strip()
    assert secret.startswith("sk_live_")
    signed_in_tab.shot("40-key-created")
    with httpx.Client(base_url=ui.url) as api:
        headers = {"Authorization": f"Bearer {secret}"}
        assert api.get("/v1/devices", headers=headers).status_code == 200
        signed_in_tab.go("/settings")
        assert secret not in page.content()  # never shown again
        row = page.locator("#keys tr", has_text="BMS")
        row.locator("button:has-text('Revoke')").click()
        page.locator("#dialog .confirm.danger").wait_for()
        signed_in_tab.shot("41-key-revoke-confirm")
        page.locator("#dialog button:has-text('Yes, revoke it')").click()
        page.wait_for_selector("text=Key revoked.")
        assert "revoked" in page.locator("#keys tr", has_text="BMS").inner_text().lower()
        _wait(lambda: api.get("/v1/devices", headers=headers).status_code == 401, 10)


def test_a_report_queued_in_settings_becomes_a_download_without_a_reload(signed_in_tab, ui):
    store, org = ui.store, ui.store.organization.id
    device = ui.gateway.runtime.device_types["http"](
        store, org, {"name": "Chiller", "points": [{"key": "supply_temp", "unit": "°C"}]}
    )
    [point] = store.points(org, device.id)
    taken = now_ms() - 60_000
    store.append_readings([Reading(point.id, taken, 6.5)])
    today = time.strftime("%Y-%m-%d", time.gmtime(taken / 1000))
    page = signed_in_tab.page
    signed_in_tab.go("/settings")
    form = page.locator("#report-form")
    form.locator("select[name=type]").select_option("telemetry_daily")
    form.locator("select[name=scope]").select_option(f"DEVICE:{device.id}")
    form.locator("input[name=from]").fill(today)
    form.locator("input[name=to]").fill(today)
    form.locator("button:has-text('Run the report')").click()
    page.wait_for_selector("text=Daily min, max and average report queued.")
    # The list polls itself until the job is done; the page is not loaded again.
    page.evaluate("window.notReloaded = true")
    link = page.locator("#job-list a:has-text('Download the CSV')")
    link.wait_for(timeout=20_000)
    assert page.evaluate("window.notReloaded") is True
    signed_in_tab.shot("42-report-ready")
    with page.expect_download() as download:
        link.click()
    body = Path(download.value.path()).read_text()
    assert body.startswith("device_id,metric,day,count,min,max,avg,unit")
    assert f"{device.id},supply_temp,{today},1,6.5,6.5,6.5" in body


def test_a_write_is_confirmed_then_read_back(signed_in_tab, ui, modbus_server):
    server = modbus_server({1: "generic_plc"}, frozen=True)
    store = ui.store
    device = ui.gateway.runtime.device_types["modbus_tcp"](
        store,
        store.organization.id,
        {
            "name": "Pump PLC",
            "type": "modbus_tcp",
            "profile": "generic_plc",
            "connection": {"host": "127.0.0.1", "port": server.port, "unit_id": 1},
        },
    )
    page = signed_in_tab.page
    _wait(
        lambda: (
            ui.gateway.runtime.device_status(store.device(store.organization.id, device.id))
            == "online"
        ),
        20,
    )
    signed_in_tab.go(f"/devices/{device.id}")
    page.select_option("#commands select[name=point]", "pump_speed_setpoint")
    page.fill("#commands input[name=value]", "140")
    page.click("#commands button:has-text('Write')")
    page.locator("#dialog button:has-text('Yes, write it')").click()
    error = page.locator("#commands .error")
    error.wait_for()
    assert "140" in page.input_value("#commands input[name=value]")  # kept as typed
    page.fill("#commands input[name=value]", "42")
    page.click("#commands button:has-text('Write')")
    assert "Write 42 to pump_speed_setpoint?" in page.locator("#dialog h2").inner_text()
    signed_in_tab.shot("50-write-confirm")
    page.locator("#dialog button:has-text('Yes, write it')").click()
    page.wait_for_selector("text=confirmed by read-back")
    signed_in_tab.shot("51-write-done")


def test_a_dropped_connection_is_shown_and_the_form_keeps_its_input(signed_in_tab, ui):
    page = signed_in_tab.page
    signed_in_tab.go("/settings")
    page.fill("#keys input[name=name]", "typed before the drop")
    page.context.set_offline(True)
    page.click("button:has-text('Create the key')")
    banner = page.locator("#net")
    banner.wait_for(state="visible")
    assert "Not sent" in banner.inner_text() and "kept" in banner.inner_text()
    assert page.input_value("#keys input[name=name]") == "typed before the drop"
    signed_in_tab.shot("60-offline-form")
    page.context.set_offline(False)
    signed_in_tab.go("/")
    page.context.set_offline(True)
    banner.wait_for(state="visible", timeout=15_000)  # the 5 s poll fails
    assert "Connection lost" in banner.inner_text()
    signed_in_tab.shot("61-offline-overview")
    page.context.set_offline(False)
    banner.wait_for(state="hidden", timeout=15_000)  # the next poll works again
    assert ui.store.api_keys(ui.store.organization.id) == []


def test_without_javascript_every_page_reads_and_actions_still_work(browser, ui):
    ui.user("admin", "admin")
    device = ui.gateway.runtime.device_types["http"](
        ui.store,
        ui.store.organization.id,
        {"name": "Tank", "points": [{"key": "temperature", "unit": "°C"}]},
    )
    [point] = ui.store.points(ui.store.organization.id, device.id)
    ui.store.append_readings([Reading(point.id, now_ms(), 42.5)])
    context = browser.new_context(viewport=TABLET, java_script_enabled=False)
    try:
        page = context.new_page()
        page.set_default_timeout(15_000)
        page.goto(ui.url + "/login")
        page.fill("input[name=username]", "admin")
        page.fill("input[name=password]", PASSWORD)
        page.click("button:has-text('Sign in')")
        page.wait_for_url(ui.url + "/")
        page.goto(f"{ui.url}/devices/{device.id}")
        assert "42.5" in page.locator("#values").inner_text()
        assert "Readings" in page.locator("main").inner_text()  # the range's summary
        page.click("#values button:has-text('Pin')")
        page.wait_for_selector("text=Pinned to the overview.")
        page.goto(ui.url + "/settings")
        page.fill("#keys input[name=name]", "no-js key")
        page.check("#keys input[value='telemetry.read']")
        page.click("button:has-text('Create the key')")
        assert page.locator("#secret-value").inner_text().startswith("sk_live_")
        page.goto(ui.url + "/settings")
        page.locator("#keys tr", has_text="no-js key").locator("button").click()
        assert "Revoke the key" in page.locator("main h2").inner_text()  # a page, not a dialog
        page.screenshot(path=str(_shots() / "70-no-javascript-confirm.png"), full_page=True)
        page.click("button:has-text('Yes, revoke it')")
        page.wait_for_selector("text=Key revoked.")
    finally:
        context.close()
    assert ui.store.pinned_points(ui.store.organization.id) == [point.id]
    [key] = ui.store.api_keys(ui.store.organization.id)
    assert key.revoked_at is not None


def _shots():
    SCREENSHOTS.mkdir(exist_ok=True)
    return SCREENSHOTS


def test_a_form_sent_after_the_session_ended_is_kept_until_signed_in_again(signed_in_tab, ui):
    page = signed_in_tab.page
    signed_in_tab.go("/settings")
    page.fill("#keys input[name=name]", "typed before expiry")
    page.check("#keys input[value='devices.read']")
    ui.store._write(lambda c: c.execute("UPDATE sessions SET expires_at = 0"))
    page.click("button:has-text('Create the key')")
    banner = page.locator("#net")
    banner.wait_for(state="visible")
    assert "session has ended" in banner.inner_text()
    assert page.input_value("#keys input[name=name]") == "typed before expiry"
    signed_in_tab.shot("80-session-ended-form-kept")
    other = page.context.new_page()  # sign in again in another tab
    other.goto(ui.url + "/login")
    other.fill("input[name=username]", "admin")
    other.fill("input[name=password]", PASSWORD)
    other.click("button:has-text('Sign in')")
    other.wait_for_url(ui.url + "/")
    other.close()
    page.click("button:has-text('Create the key')")  # the old page's token is refreshed
    page.wait_for_function(
        "document.getElementById('net').textContent.includes('You signed in again')"
    )
    assert page.input_value("#keys input[name=name]") == "typed before expiry"
    page.click("button:has-text('Create the key')")
    assert page.locator("#secret-value").inner_text().startswith("sk_live_")
    [key] = ui.store.api_keys(ui.store.organization.id)
    assert key.name == "typed before expiry"


def test_a_service_report_is_submitted_and_the_service_pages_are_photographed(signed_in_tab, ui):
    store, org = ui.store, ui.store.organization.id
    asset, _ = store.create_record(org, "assets", {"name": "Chiller 2", "location": "Roof"})
    part, _ = store.create_record(org, "parts", {"name": "Gasket", "part_number": "G-12"})
    store.create_record(org, "service_visits", {"asset_id": asset.id, "started_at": now_ms(),
                        "technician": "admin", "estimated_cost": 120.0})  # fmt: skip
    planned = {"title": "Quarterly filter change", "starts_at": now_ms() + 86_400_000,
               "asset_id": asset.id}  # fmt: skip
    store.upsert_record(org, "appointments", "apt_1", planned, False)
    page = signed_in_tab.page
    signed_in_tab.go("/")
    page.click("header nav a:has-text('Service')")
    page.wait_for_url(ui.url + "/service")
    page.click("a:has-text('New service report')")
    page.select_option("select[name=asset_id]", asset.id)
    page.select_option("select[name=state]", "2")
    page.fill("textarea[name=notes]", "Replaced the gasket; no leak after 10 min.")
    page.select_option("select[name=part_1]", part.id)
    page.fill("input[name=qty_1]", "2")
    signed_in_tab.shot("90-service-report-form")
    page.click("button:has-text('Save the report')")
    dialog = page.locator("#dialog .confirm")
    dialog.wait_for()
    assert "Save this service report" in dialog.inner_text()
    signed_in_tab.shot("91-service-report-confirm")
    dialog.locator("button:has-text('Yes, save it')").click()
    page.wait_for_selector("text=Service report saved")
    row = page.locator("#report-list tbody tr").first
    assert "Chiller 2" in row.inner_text() and "Gasket" in row.inner_text()
    assert "waiting" in row.inner_text().lower()  # in the outbox, for the sync agent
    [report] = store.record_page(org, "service_reports").items
    assert report.fields["parts_used"] == [{"part_id": part.id, "quantity": 2.0}]
    signed_in_tab.shot("92-service-reports")
    for path, name in (
        ("/service/visits", "93-service-visits"),
        ("/service/visits/new", "94-service-visit-form"),
        ("/service/appointments", "95-appointments"),
        ("/devices/new/ble", "96-ble-nearby-none-heard"),
    ):
        signed_in_tab.go(path)
        assert page.locator("main h1").count() >= 1, path
        signed_in_tab.shot(name)


def test_a_ble_sensor_heard_nearby_is_adopted_in_the_wizard(browser, ble_ui):
    cold_room = DEMO_SENSORS[0]
    ble_ui.user("admin", "admin")
    context = browser.new_context(viewport=TABLET)
    hosts: set[str] = set()
    try:
        page = context.new_page()
        page.set_default_timeout(20_000)
        page.on("request", lambda r: hosts.add(urlsplit(r.url).hostname or ""))
        tab = Tab(page, ble_ui.url, hosts)
        tab.sign_in()
        tab.go("/devices/new")
        page.click("a:has-text('A BLE sensor nearby')")
        page.wait_for_url(ble_ui.url + "/devices/new/ble")
        card = page.locator(f'article[data-address="{cold_room.address}"]')
        # The list refreshes itself every 5 s: the sensor's values come without a reload.
        card.locator("tr[data-point=temperature]").wait_for()
        assert "bthome" in card.inner_text() and "dBm" in card.inner_text()
        tab.shot("97-ble-nearby")
        card.locator("input[name=name]").fill("Cold room")
        card.locator("button:has-text('Adopt')").click()
        dialog = page.locator("#dialog .confirm")
        dialog.wait_for()
        assert f"Adopt bthome sensor {cold_room.address} as Cold room?" in dialog.inner_text()
        tab.shot("98-ble-adopt-confirm")
        dialog.locator("button:has-text('Yes, adopt it')").click()
        page.wait_for_selector("#live")
        assert page.locator("main h1").first.inner_text() == "Cold room"
        assert "Sensor adopted" in page.locator(".flash").inner_text()
        tab.shot("99-ble-device")
    finally:
        context.close()
    [device] = ble_ui.store.devices(ble_ui.store.organization.id)
    assert (device.type, device.connection["address"]) == ("ble", cold_room.address)
    assert hosts <= {"127.0.0.1"}, hosts
