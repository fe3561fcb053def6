"""Report and export jobs on the settings page over real HTTP: queued by a technician, listed
while they run, and downloaded through their signed links; refused for viewers, stale forms and
bad windows, with the reason on the page."""

from __future__ import annotations

import csv
import io
import re
import time
import zipfile

import pytest

from edge.models import Boundary, Reading
from tests.ui.conftest import Ui
from tests.web.jobs_helpers import job_settings

DAY = "2026-01-02"
# Readings of a day: 10, 20 and 33 at 01:00, 02:00 and 03:00 UTC.
TIMES = (1_767_315_600_000, 1_767_319_200_000, 1_767_322_800_000)
LINK = re.compile(r'href="([^"]+/(?:reports|exports)/[^"/]+/download\?[^"]+)"')


@pytest.fixture
def jobs_ui(gateway_factory, tmp_path):
    """A gateway whose job runner looks for work every 0.1 s."""
    made = Ui(gateway_factory(settings_=job_settings(tmp_path)))
    yield made
    for client in made.clients:
        client.close()


def _pump(ui: Ui, name: str = "Pump") -> str:
    """A device with a day of temperature readings; its id."""
    body = {"name": name, "points": [{"key": "temp", "unit": "°C"}]}
    device = ui.gateway.runtime.device_types["http"](ui.store, ui.store.organization.id, body)
    [point] = ui.store.points(ui.store.organization.id, device.id)
    values = zip(TIMES, (10, 20, 33), strict=True)
    ui.store.append_readings([Reading(point.id, t, v) for t, v in values])
    return device.id


def _ready_link(client, timeout_s: float = 20.0) -> str:
    """The settings page's first download link, once its job is ready."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = LINK.search(client.get("/settings").text)
        if found:
            return found.group(1).replace("&amp;", "&")
        time.sleep(0.1)
    raise AssertionError("no job became ready")


def _report(ui: Ui, client, **fields: str):
    sent = {"_csrf": ui.csrf(client, "/settings"), "type": "telemetry_daily", "from": DAY,
            "to": DAY, **fields}  # fmt: skip
    return client.post("/settings/reports", data=sent)


def test_a_report_is_listed_while_it_runs_and_its_csv_downloads_once_ready(jobs_ui):
    ui = jobs_ui
    device = _pump(ui)
    tech = ui.signed_in("tech", "technician")
    queued = _report(ui, tech, scope=f"DEVICE:{device}")
    assert queued.status_code == 303 and queued.headers["location"] == "/settings#jobs"
    [job] = ui.store.job_page(_everything(ui), "report").items
    assert (job.requested_by, job.scope_id, job.type) == ("tech", device, "telemetry_daily")
    page = tech.get("/settings").text
    assert "Daily min, max and average report queued." in page
    row = re.search(rf'<tr data-job="{job.id}" data-status="(\w+)"', page)
    if row.group(1) in ("queued", "running"):
        # The list polls its own fragment until the job is done.
        assert 'hx-select="#job-list"' in page
    link = _ready_link(tech)
    answer = ui.client().get(link)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    [day] = list(csv.DictReader(io.StringIO(answer.text)))
    assert (day["device_id"], day["day"], day["count"], day["min"], day["max"]) == (
        device,
        DAY,
        "3",
        "10.0",
        "33.0",
    )
    settled = tech.get("/settings").text
    assert 'hx-select="#job-list"' not in settled and "1 row, " in settled
    # The link is the API's: altered, it is refused.
    assert ui.client().get(link.replace("signature=", "signature=0")).status_code == 403


def test_an_export_of_a_site_downloads_a_zip_of_what_was_chosen(jobs_ui):
    ui = jobs_ui
    store, org = ui.store, ui.store.organization.id
    site = store.create_site(org, "Boiler house")
    device = _pump(ui)
    store.update_device(org, device, site_id=site.id)
    tech = ui.signed_in("tech", "technician")
    page = tech.get("/settings").text
    assert f'<option value="SITE:{site.id}"' in page
    sent = {"_csrf": ui.csrf(tech, "/settings"), "scope": f"SITE:{site.id}", "from": DAY,
            "to": DAY, "includes": ["READINGS"]}  # fmt: skip
    assert tech.post("/settings/exports", data=sent).status_code == 303
    answer = ui.client().get(_ready_link(tech))
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(answer.content)) as made:
        assert made.namelist() == ["readings.csv"]
        rows = list(csv.DictReader(io.StringIO(made.read("readings.csv").decode())))
    assert [r["value"] for r in rows] == ["10.0", "20.0", "33.0"]
    assert "Boiler house" in tech.get("/settings").text


def test_a_viewer_reads_the_jobs_but_cannot_queue_one(jobs_ui):
    ui = jobs_ui
    device = _pump(ui)
    tech = ui.signed_in("tech", "technician")
    _report(ui, tech, scope=f"DEVICE:{device}")
    _ready_link(tech)
    viewer = ui.signed_in("viewer", "viewer")
    page = viewer.get("/settings").text
    assert 'id="report-form"' not in page and 'id="export-form"' not in page
    assert LINK.search(page), "a viewer downloads what is ready"
    refused = _report(ui, viewer, scope=f"DEVICE:{device}")
    assert refused.status_code == 403
    assert len(ui.store.job_page(_everything(ui), "report").items) == 1


def test_a_job_form_without_the_sessions_token_is_refused(jobs_ui):
    ui = jobs_ui
    device = _pump(ui)
    tech = ui.signed_in("tech", "technician")
    sent = {"type": "telemetry_daily", "scope": f"DEVICE:{device}", "from": DAY, "to": DAY}
    assert tech.post("/settings/reports", data=sent).status_code == 403
    forged = {**sent, "_csrf": "not-the-token", "includes": "READINGS"}
    assert tech.post("/settings/exports", data=forged).status_code == 403
    assert ui.store.job_page(_everything(ui), "report").items == []
    assert ui.store.job_page(_everything(ui), "export").items == []


@pytest.mark.parametrize(
    ("path", "fields", "reason"),
    [
        ("/settings/reports", {"to": "2025-12-31"}, "the last day must follow the first"),
        ("/settings/reports", {"to": "2027-06-01"}, "at most 366 days on"),
        ("/settings/reports", {"from": "yesterday"}, "give the first and last day (YYYY-MM-DD)"),
        ("/settings/reports", {"type": "sales"}, "choose a report: Energy per day"),
        ("/settings/reports", {"scope": "DEVICE:dev_gone"}, "no device dev_gone"),
        ("/settings/reports", {"scope": "ROOM:1"}, "choose a device, a site or every device"),
        ("/settings/exports", {"scope": ""}, "choose the device or site to export"),
        ("/settings/exports", {"includes": []}, "choose readings, annotations or both"),
        ("/settings/exports", {"includes": ["PHOTOS"]}, "choose readings, annotations or both"),
    ],
)
def test_a_bad_job_form_is_refused_with_the_reason_and_kept(jobs_ui, path, fields, reason):
    ui = jobs_ui
    device = _pump(ui)
    tech = ui.signed_in("tech", "technician")
    which = "report" if path.endswith("reports") else "export"
    sent = {"_csrf": ui.csrf(tech, "/settings"), "which": which, "type": "alarm_log",
            "scope": f"DEVICE:{device}", "from": DAY, "to": DAY, "includes": ["READINGS"],
            **fields}  # fmt: skip
    answer = tech.post(path, data=sent)
    assert answer.status_code == 422 and reason in answer.text.replace("&#39;", "'")
    form = re.search(rf'<form[^>]+id="{which}-form".*?</form>', answer.text, re.S).group(0)
    assert f'value="{sent["from"]}"' in form, "the form keeps what was typed"
    link_form = re.search(r'<form[^>]+action="/settings/export".*?</form>', answer.text, re.S)
    assert f'value="{sent["from"]}"' not in link_form.group(0), "only the form sent is kept"
    assert ui.store.job_page(_everything(ui), which).items == []


def _everything(ui: Ui) -> Boundary:
    return Boundary(ui.store.organization.id)


def test_a_queued_job_keeps_the_list_live_and_a_failed_one_says_why(gateway_factory, tmp_path):
    # The runner looks for work at start and then once a minute, so a job made after the
    # start (and a sign-in's memory-hard hash) stays queued until the test claims it.
    ui = Ui(gateway_factory(settings_=job_settings(tmp_path, poll_s=60)))
    tech = ui.signed_in("tech", "technician")
    _report(ui, tech, type="alarm_log")
    store = ui.store
    [waiting] = store.job_page(_everything(ui), "report").items
    page = tech.get("/settings", headers={"HX-Request": "true"}).text
    assert f'data-job="{waiting.id}" data-status="queued"' in page
    assert 'hx-get="/settings" hx-trigger="every 2s" hx-select="#job-list"' in page
    assert "every device" in page and "being made…" in page
    assert store.claim_job().id == waiting.id
    store.fail_job(waiting.id, "OSError: [Errno 28] No space left on device")
    page = tech.get("/settings").text
    row = re.search(rf'<tr data-job="{waiting.id}" data-status="failed">.*?</tr>', page, re.S)
    assert "No space left on device" in row.group(0) and "download" not in row.group(0)
    assert 'hx-select="#job-list"' not in page
    for client in ui.clients:
        client.close()
