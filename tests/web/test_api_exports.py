"""Exports over real HTTP in both dialects: 201 PENDING with seed 001's fields, a zip of CSVs
of the ingested readings and annotations, signed downloads until expiry, and bad input."""

from __future__ import annotations

import csv
import io
import time
import zipfile
from pathlib import Path

import httpx
import pytest

from tests.web.conftest import error_of
from tests.web.jobs_helpers import ALL, device, ingest, job_settings, keyed, settle

DONE = {"READY", "FAILED"}
WINDOW = {"from": "2026-01-01T00:00:00Z", "to": "2026-02-01T00:00:00Z"}
FLOW = [(f"2026-01-{d:02d}T12:00:00Z", d * 1.25) for d in range(1, 32)]


@pytest.fixture
def gw(gateway_factory, tmp_path):
    return keyed(gateway_factory(settings_=job_settings(tmp_path)))


def export(gw, headers, body: dict) -> dict:
    made = gw.client.post("/api/v1/exports", json=body, headers=headers)
    assert made.status_code == 201, made.text
    return made.json()


def entries(content: bytes) -> dict[str, list[dict[str, str]]]:
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        return {name: list(csv.DictReader(io.StringIO(archive.read(name).decode())))
                for name in archive.namelist()}  # fmt: skip


def test_an_export_is_pending_then_ready_with_a_zip_of_its_readings_and_annotations(gw):
    headers = gw.key(*ALL)
    pump = device(gw.client, headers, "Pump")
    other = device(gw.client, headers, "Other pump")
    ingest(gw.client, headers, pump, "flow", [*FLOW, ("2026-02-01T00:00:00Z", 99.0)])
    ingest(gw.client, headers, pump, "pressure", [("2026-01-10T00:00:00Z", 2.5)])
    ingest(gw.client, headers, other, "flow", FLOW[:3])
    note = {"device_id": pump, "from": "2026-01-05T00:00:00Z", "to": "2026-01-06T00:00:00Z",
            "text": "Seal replaced"}  # fmt: skip
    assert gw.client.post("/v1/annotations", json=note, headers=headers).status_code == 201
    body = {"scopeType": "DEVICE", "scopeId": pump, **WINDOW,
            "includes": ["READINGS", "ANNOTATIONS"]}  # fmt: skip
    pending = export(gw, headers, body)
    assert pending["id"].startswith("exp_") and pending["status"] == "PENDING"
    asked = {"scopeType": "DEVICE", "scopeId": pump, "includes": ["READINGS", "ANNOTATIONS"]}
    assert {k: pending[k] for k in asked} == asked
    assert pending["from"].startswith("2026-01-01T00:00:00") and pending["requestedBy"]
    assert pending["createdAt"] and pending["downloadUrl"] is None

    ready = settle(gw.client, headers, f"/api/v1/exports/{pending['id']}", DONE)
    assert ready["status"] == "READY", ready
    assert (ready["readingCount"], ready["annotationCount"]) == (32, 1)
    assert ready["completedAt"] and ready["expiresAt"] > ready["completedAt"]
    got = httpx.get(ready["downloadUrl"])
    assert got.status_code == 200 and got.headers["content-type"] == "application/zip"
    assert int(got.headers["content-length"]) == ready["sizeBytes"] == len(got.content)
    files = entries(got.content)
    assert set(files) == {"readings.csv", "annotations.csv"}
    flow = [(r["ts"], float(r["value"])) for r in files["readings.csv"] if r["metric"] == "flow"]
    assert flow == [(ts.replace("Z", ".000Z"), v) for ts, v in FLOW]  # to is exclusive
    assert {r["device_id"] for r in files["readings.csv"]} == {pump}
    [annotation] = files["annotations.csv"]
    assert (annotation["text"], annotation["from"]) == ("Seal replaced", "2026-01-05T00:00:00.000Z")

    snake = gw.client.get(f"/v1/exports/{pending['id']}", headers=headers).json()["data"]
    assert snake["reading_count"] == 32 and "/v1/exports/" in snake["download_url"]
    assert httpx.get(snake["download_url"]).content == got.content
    [event] = gw.client.get("/v1/events", params={"type": "export.ready"},
                            headers=headers).json()["data"]  # fmt: skip
    assert event["data"]["export_id"] == pending["id"] and event["device_id"] == pump


def test_a_site_export_of_readings_only_covers_the_sites_devices(gw):
    headers = gw.key(*ALL)
    store = gw.runtime.store
    site = store.create_site(store.organization.id, "Plant")
    here = device(gw.client, headers, "Here", site_id=site.id)
    away = device(gw.client, headers, "Away")
    for dev in (here, away):
        ingest(gw.client, headers, dev, "flow", FLOW[:5])
    body = {"scope_type": "SITE", "scope_id": site.id, **WINDOW, "includes": ["READINGS"]}
    made = gw.client.post("/v1/exports", json=body, headers=headers)
    assert made.status_code == 201 and made.json()["data"]["status"] == "PENDING"
    ready = settle(gw.client, headers, f"/v1/exports/{made.json()['data']['id']}", DONE)
    files = entries(httpx.get(ready["download_url"]).content)
    assert set(files) == {"readings.csv"}
    assert {r["device_id"] for r in files["readings.csv"]} == {here}
    assert ready["reading_count"] == 5 and ready["annotation_count"] == 0


def test_an_expired_export_is_deleted_its_url_refused_and_it_shows_expired(gw):
    headers = gw.key(*ALL)
    pump = device(gw.client, headers, "Pump")
    ingest(gw.client, headers, pump, "flow", FLOW[:2])
    pending = export(gw, headers, {"scopeType": "DEVICE", "scopeId": pump, **WINDOW})
    ready = settle(gw.client, headers, f"/api/v1/exports/{pending['id']}", DONE)
    assert ready["includes"] == ["READINGS", "ANNOTATIONS"]  # both by default
    file = Path(gw.runtime.settings.data_dir) / "exports" / f"{pending['id']}.zip"
    assert file.is_file() and httpx.get(ready["downloadUrl"]).status_code == 200
    gone = settle(gw.client, headers, f"/api/v1/exports/{pending['id']}", {"EXPIRED"}, 10)
    assert gone["downloadUrl"] is None and not file.exists()
    error_of(httpx.get(ready["downloadUrl"]), 403, "forbidden")
    listed = gw.client.get("/api/v1/exports", params={"status": "EXPIRED"}, headers=headers)
    assert [e["id"] for e in listed.json()["data"]] == [pending["id"]]


def test_a_link_is_refused_once_its_own_time_is_up_even_while_the_file_is_kept(
    gateway_factory, tmp_path
):
    gw = keyed(gateway_factory(settings_=job_settings(tmp_path, keep_s=600, link_ttl_s=2)))
    headers = gw.key(*ALL)
    pump = device(gw.client, headers, "Pump")
    pending = export(gw, headers, {"scopeType": "DEVICE", "scopeId": pump, **WINDOW})
    ready = settle(gw.client, headers, f"/api/v1/exports/{pending['id']}", DONE)
    assert httpx.get(ready["downloadUrl"]).status_code == 200
    deadline = ready["downloadExpiresAt"]
    give_up = time.monotonic() + 6
    while httpx.get(ready["downloadUrl"]).status_code == 200:
        assert time.monotonic() < give_up, "the link outlived link_ttl_s"
        time.sleep(0.2)
    error_of(httpx.get(ready["downloadUrl"]), 403, "forbidden")
    fresh = gw.client.get(f"/api/v1/exports/{pending['id']}", headers=headers).json()
    assert fresh["status"] == "READY" and fresh["downloadExpiresAt"] > deadline
    assert httpx.get(fresh["downloadUrl"]).status_code == 200


def test_bad_export_requests_get_the_error_body_and_queue_nothing(gw):
    headers = gw.key(*ALL)
    pump = device(gw.client, headers, "Pump")
    scope = {"scopeType": "DEVICE", "scopeId": pump}
    bad = [
        ({**scope, "scopeType": "ASSET", **WINDOW}, 422, "validation_failed"),
        ({**scope, **WINDOW, "includes": []}, 422, "validation_failed"),
        ({**scope, **WINDOW, "includes": ["READINGS", "MEDIA"]}, 422, "validation_failed"),
        ({**scope, **WINDOW, "includes": "READINGS"}, 422, "validation_failed"),
        ({**scope, "from": "2025-01-01T00:00:00Z", "to": "2026-01-03T00:00:00Z"}, 400,
         "invalid_request"),
        ({**scope, "from": WINDOW["to"], "to": WINDOW["from"]}, 400, "invalid_request"),
        ({**scope, "from": WINDOW["from"], "to": WINDOW["from"]}, 400, "invalid_request"),
        ({**scope, "to": WINDOW["to"]}, 400, "invalid_request"),
        ({"scopeType": "DEVICE", "scopeId": "dev_nope", **WINDOW}, 422, "validation_failed"),
        ({"scopeType": "SITE", "scopeId": pump, **WINDOW}, 422, "validation_failed"),
        ({"scopeType": "DEVICE", **WINDOW}, 422, "validation_failed"),
    ]  # fmt: skip
    for body, status, code in bad:
        error_of(gw.client.post("/api/v1/exports", json=body, headers=headers), status, code)
    assert gw.client.get("/v1/exports", headers=headers).json()["data"] == []
    error_of(gw.client.get("/api/v1/exports/exp_nope", headers=headers), 404, "not_found")
    only_write = gw.key("exports.write")
    error_of(gw.client.get("/v1/exports", headers=only_write), 403, "forbidden")


def test_a_key_limited_to_a_group_cannot_export_devices_outside_it(gw):
    headers = gw.key(*ALL)
    store = gw.runtime.store
    group = store.create_device_group(store.organization.id, "North")
    site = store.create_site(store.organization.id, "Plant")
    mine = device(gw.client, headers, "Mine", group_id=group.id, site_id=site.id)
    theirs = device(gw.client, headers, "Theirs", site_id=site.id)
    for dev in (mine, theirs):
        ingest(gw.client, headers, dev, "flow", FLOW[:2])
    bounded = gw.key(*ALL, groups=(group.id,))
    refused = gw.client.post("/v1/exports", headers=bounded, json={
        "scope_type": "DEVICE", "scope_id": theirs, **WINDOW})  # fmt: skip
    error_of(refused, 422, "validation_failed")
    made = gw.client.post("/v1/exports", headers=bounded, json={
        "scope_type": "SITE", "scope_id": site.id, **WINDOW})  # fmt: skip
    ready = settle(gw.client, bounded, f"/v1/exports/{made.json()['data']['id']}", DONE)
    files = entries(httpx.get(ready["download_url"]).content)
    assert {r["device_id"] for r in files["readings.csv"]} == {mine}
    south = store.create_device_group(store.organization.id, "South")
    elsewhere = gw.key(*ALL, groups=(south.id,))
    error_of(gw.client.get(f"/v1/exports/{ready['id']}", headers=elsewhere), 404, "not_found")
