"""Report runs over real HTTP in both dialects: 202, background generation from ingested
readings, signed downloads until the file expires, their own rate bucket, and bad input."""

from __future__ import annotations

import csv
import io
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.sync.test_webhooks import Receiver
from tests.web.conftest import error_of
from tests.web.jobs_helpers import ALL, device, ingest, job_settings, keyed, settle

DONE = {"ready", "failed"}
ENERGY = [("2026-01-01T00:00:00Z", 100.0), ("2026-01-01T08:00:00Z", 110.0),
          ("2026-01-01T16:00:00Z", 125.5), ("2026-01-02T06:00:00Z", 130.0),
          ("2026-01-02T18:00:00Z", 140.0),
          # The meter is replaced: its counter starts again from zero.
          ("2026-01-03T09:00:00Z", 3.0), ("2026-01-03T20:00:00Z", 8.0),
          # No readings on the 4th: the gap's increment falls on the 5th.
          ("2026-01-05T10:00:00Z", 20.0)]  # fmt: skip
POWER = [("2026-01-01T01:00:00Z", 10.0), ("2026-01-01T02:00:00Z", 20.0),
         ("2026-01-01T03:00:00Z", 33.0), ("2026-01-02T01:00:00Z", -4.0)]  # fmt: skip


@pytest.fixture
def gw(gateway_factory, tmp_path):
    return keyed(gateway_factory(settings_=job_settings(tmp_path)))


@pytest.fixture
def receiver():
    made = Receiver()
    yield made
    made.close()


def rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def meter(gw, headers) -> str:
    dev = device(gw.client, headers, "Main incomer")
    ingest(gw.client, headers, dev, "energy_kwh", ENERGY)
    ingest(gw.client, headers, dev, "power_w", POWER)
    return dev


def run(gw, headers, body: dict, prefix: str = "/v1") -> dict:
    made = gw.client.post(f"{prefix}/reports", json=body, headers=headers)
    assert made.status_code == 202, made.text
    return made.json()["data"] if prefix == "/v1" else made.json()


def test_an_energy_report_counts_increments_per_day_through_resets_and_gaps(gw):
    headers = gw.key(*ALL)
    dev = meter(gw, headers)
    body = {"type": "energy_daily", "from": "2026-01-01T00:00:00Z", "to": "2026-01-08T00:00:00Z",
            "device_id": dev}  # fmt: skip
    queued = run(gw, headers, body)
    assert queued["id"].startswith("rpt_") and queued["status"] == "queued"
    assert queued["expected_completion_at"] > queued["created_at"]
    assert queued["download_url"] is None
    ready = settle(gw.client, headers, f"/v1/reports/{queued['id']}", DONE)
    assert ready["status"] == "ready", ready
    assert ready["row_count"] == 4 and ready["size_bytes"] > 0
    got = httpx.get(ready["download_url"])
    assert got.status_code == 200 and got.headers["content-type"].startswith("text/csv")
    table = [(r["day"], float(r["energy"]), r["first_value"], r["last_value"], r["readings"],
              r["resets"]) for r in rows(got.text)]  # fmt: skip
    assert table == [("2026-01-01", 25.5, "100.0", "125.5", "3", "0"),
                     ("2026-01-02", 14.5, "130.0", "140.0", "2", "0"),
                     ("2026-01-03", 8.0, "3.0", "8.0", "2", "1"),
                     ("2026-01-05", 12.0, "20.0", "20.0", "1", "0")]  # fmt: skip
    assert {r["device_id"] for r in rows(got.text)} == {dev}
    assert {r["metric"] for r in rows(got.text)} == {"energy_kwh"}  # power is no counter


def test_a_daily_telemetry_report_in_sepolos_dialect_aggregates_each_metric(gw):
    headers = gw.key(*ALL)
    dev = meter(gw, headers)
    body = {"type": "telemetry_daily", "fromUtc": "2026-01-01T00:00:00Z",
            "toUtc": "2026-01-03T00:00:00Z", "deviceId": dev}  # fmt: skip
    queued = run(gw, headers, body, "/api/v1")
    assert queued["status"] == "queued" and queued["deviceId"] == dev
    ready = settle(gw.client, headers, f"/api/v1/reports/{queued['id']}", DONE)
    assert ready["status"] == "ready" and "/api/v1/reports/" in ready["downloadUrl"]
    got = {(r["metric"], r["day"]): r for r in rows(httpx.get(ready["downloadUrl"]).text)}
    power = got["power_w", "2026-01-01"]
    assert (power["count"], float(power["min"]), float(power["max"]), float(power["avg"])) == (
        "3", 10.0, 33.0, 21.0)  # fmt: skip
    assert float(got["power_w", "2026-01-02"]["avg"]) == -4.0
    assert got["energy_kwh", "2026-01-02"]["count"] == "2"
    assert ("energy_kwh", "2026-01-03") not in got  # outside [from, to)


def test_the_alarm_log_lists_the_alarms_raised_in_the_window_with_their_trail(gw):
    headers = gw.key(*ALL)
    dev = device(gw.client, headers, "Tank", points=[{"key": "level"}])
    rule = {"name": "High level", "kind": "threshold", "device_id": dev, "metric": "level",
            "params": {"op": ">", "value": 80}, "severity": "critical"}  # fmt: skip
    assert gw.client.post("/v1/alert-rules", json=rule, headers=headers).status_code == 201
    time.sleep(0.2)
    now = datetime.now(UTC)
    stamp = lambda s: (now + timedelta(seconds=s)).isoformat().replace("+00:00", "Z")  # noqa: E731
    ingest(gw.client, headers, dev, "level", [(stamp(0), 50), (stamp(1), 91.5)])
    deadline = time.monotonic() + 15
    while not (alarms := gw.client.get("/v1/alerts", headers=headers).json()["data"]):
        assert time.monotonic() < deadline, "no alarm"
        time.sleep(0.2)
    acked = gw.client.post(f"/v1/events/{alarms[0]['id']}/ack", json={}, headers=headers)
    assert acked.status_code == 200, acked.text
    body = {"type": "alarm_log", "from": stamp(-3600), "to": stamp(3600)}
    ready = settle(gw.client, headers, f"/v1/reports/{run(gw, headers, body)['id']}", DONE)
    [line] = rows(httpx.get(ready["download_url"]).text)
    assert (line["alarm_id"], line["device_id"], line["severity"], float(line["value"])) == (
        alarms[0]["id"], dev, "critical", 91.5)  # fmt: skip
    assert line["acknowledged_at"] and line["acknowledged_by"] and not line["cleared_at"]


def test_a_download_works_until_the_file_expires_then_is_refused_and_the_file_deleted(gw):
    headers = gw.key(*ALL)
    dev = meter(gw, headers)
    body = {"type": "energy_daily", "from": "2026-01-01T00:00:00Z", "to": "2026-01-02T00:00:00Z",
            "device_id": dev}  # fmt: skip
    ready = settle(gw.client, headers, f"/v1/reports/{run(gw, headers, body)['id']}", DONE)
    url = ready["download_url"]
    assert httpx.get(url).status_code == 200
    error_of(httpx.get(url.replace("signature=", "signature=0")), 403, "forbidden")
    error_of(httpx.get(url + "&org_id=another"), 403, "forbidden")
    file = Path(gw.runtime.settings.data_dir) / "reports" / f"{ready['id']}.csv"
    assert file.is_file()
    # The link lives no longer than the file (keep_s, 4 s, is shorter than link_ttl_s).
    assert ready["download_expires_at"][:19] == ready["expires_at"][:19]
    gone = settle(gw.client, headers, f"/v1/reports/{ready['id']}", {"expired"}, timeout=10)
    assert gone["download_url"] is None
    error_of(httpx.get(url), 403, "forbidden")
    assert not file.exists()


def test_report_runs_draw_from_their_own_bucket_and_get_429_past_the_burst(gw):
    headers = gw.key(*ALL)
    body = {"type": "alarm_log", "from": "2026-01-01T00:00:00Z", "to": "2026-01-02T00:00:00Z"}
    for _ in range(5):
        answer = gw.client.post("/v1/reports", json=body, headers=headers)
        assert answer.status_code == 202 and answer.headers["x-ratelimit-limit"] == "30"
    refused = error_of(gw.client.post("/v1/reports", json=body, headers=headers), 429,
                       "rate_limited")  # fmt: skip
    assert refused["details"]["bucket"] == "report"
    # 30 an hour: the next run fits in two minutes.
    retry = gw.client.post("/api/v1/reports", json=body, headers=headers)
    assert retry.status_code == 429 and 60 <= int(retry.headers["retry-after"]) <= 120
    assert (
        gw.client.post(
            "/v1/devices", json={"name": "x", "type": "http"}, headers=headers
        ).status_code
        == 201
    )  # the write bucket is untouched


def test_bad_report_requests_get_the_error_body_and_queue_nothing(gw):
    headers = gw.key(*ALL)
    dev = device(gw.client, headers, "Meter")
    window = {"from": "2026-01-01T00:00:00Z", "to": "2026-01-02T00:00:00Z"}
    bad = [
        ({"type": "energy_monthly", **window}, 422, "validation_failed"),
        ({"type": "alarm_log", "from": "2025-01-01T00:00:00Z", "to": "2026-01-03T00:00:00Z"},
         400, "invalid_request"),
        ({"type": "alarm_log", "from": window["to"], "to": window["from"]}, 400,
         "invalid_request"),
        ({"type": "alarm_log", "from": window["from"]}, 400, "invalid_request"),
        ({"type": "alarm_log", "from": "2026-01-01T00:00:00", "to": window["to"]}, 400,
         "invalid_request"),
        ({"type": "alarm_log", **window, "device_id": "dev_nope"}, 422, "validation_failed"),
        ({"type": "alarm_log", **window, "site_id": "site_nope"}, 422, "validation_failed"),
        ({"type": "alarm_log", **window, "device_id": dev, "site_id": "x"}, 422,
         "validation_failed"),
        ({"type": "alarm_log", **window, "colour": "red"}, 422, "validation_failed"),
    ]  # fmt: skip
    for body, status, code in bad:
        # A key per request: each refusal also spends a run from the key's report bucket.
        error_of(gw.client.post("/v1/reports", json=body, headers=gw.key(*ALL)), status, code)
    error_of(gw.client.post("/v1/reports", content=b"[", headers=headers), 400, "invalid_request")
    assert gw.client.get("/v1/reports", headers=headers).json()["data"] == []
    error_of(gw.client.get("/v1/reports/rpt_nope", headers=headers), 404, "not_found")
    error_of(gw.client.get("/v1/reports", params={"cursor": "x!"}, headers=headers), 400,
             "invalid_request")  # fmt: skip


def test_runs_list_newest_first_in_pages_and_by_updated_since(gw):
    headers = gw.key(*ALL)
    body = {"type": "alarm_log", "from": "2026-01-01T00:00:00Z", "to": "2026-01-02T00:00:00Z"}
    made = []
    for _ in range(3):
        made.append(run(gw, gw.key(*ALL), body)["id"])
        time.sleep(0.005)  # runs asked within one millisecond have no order between them
    first = gw.client.get("/v1/reports", params={"limit": 2}, headers=headers).json()
    assert [r["id"] for r in first["data"]] == made[::-1][:2]
    cursor = first["meta"]["pagination"]["next"]
    rest = gw.client.get("/api/v1/reports", params={"pageSize": 2, "cursor": cursor},
                         headers=headers).json()  # fmt: skip
    assert [r["id"] for r in rest["data"]] == made[:1] and rest["hasMore"] is False
    for report_id in made:
        settle(gw.client, headers, f"/v1/reports/{report_id}", DONE)
    since = gw.client.get("/v1/reports", params={"updated_since": "2000-01-01T00:00:00Z"},
                          headers=headers).json()["data"]  # fmt: skip
    assert sorted(r["id"] for r in since) == sorted(made)
    stamps = [(r["updated_at"], r["id"]) for r in since]
    assert stamps == sorted(stamps)
    ready = gw.client.get("/v1/reports", params={"status": "ready"}, headers=headers).json()
    assert len(ready["data"]) == 3


def test_a_ready_report_and_a_ready_export_are_delivered_to_a_webhook(gw, receiver):
    headers = gw.key(*ALL, "webhooks.write")
    events = ["report.ready", "export.ready"]
    hook = gw.client.post("/v1/webhooks", json={"url": receiver.url, "events": events},
                          headers=headers)  # fmt: skip
    assert hook.status_code == 201, hook.text
    body = {"type": "alarm_log", "from": "2026-01-01T00:00:00Z", "to": "2026-01-02T00:00:00Z"}
    report = settle(gw.client, headers, f"/v1/reports/{run(gw, headers, body)['id']}", DONE)
    pump = device(gw.client, headers, "Pump")
    scope = {"scope_type": "DEVICE", "scope_id": pump, "from": body["from"], "to": body["to"]}
    made = gw.client.post("/v1/exports", json=scope, headers=headers)
    export = settle(gw.client, headers, f"/v1/exports/{made.json()['data']['id']}",
                    {"READY", "FAILED"})  # fmt: skip
    deadline = time.monotonic() + 15
    while len(receiver.accepted()) < 2:
        assert time.monotonic() < deadline, "the webhook got no ready events"
        time.sleep(0.1)
    got = {r.json["type"]: r.json["data"] for r in receiver.accepted()}
    assert got["report.ready"]["data"]["report_id"] == report["id"]
    assert got["report.ready"]["data"]["row_count"] == 0
    assert got["export.ready"]["data"]["export_id"] == export["id"]
    assert got["export.ready"]["device_id"] == pump
    events = gw.client.get("/v1/events", params={"type": "report.ready"}, headers=headers)
    assert [e["data"]["report_id"] for e in events.json()["data"]] == [report["id"]]


def test_a_key_limited_to_a_group_reports_only_on_its_devices_and_sees_only_its_runs(gw):
    headers = gw.key(*ALL)
    store = gw.runtime.store
    group = store.create_device_group(store.organization.id, "North")
    mine = device(gw.client, headers, "In group", group_id=group.id)
    theirs = device(gw.client, headers, "Elsewhere")
    ingest(gw.client, headers, mine, "energy_kwh", ENERGY[:3])
    ingest(gw.client, headers, theirs, "energy_kwh", ENERGY[:3])
    bounded = gw.key(*ALL, groups=(group.id,))
    window = {"from": "2026-01-01T00:00:00Z", "to": "2026-01-02T00:00:00Z"}
    error_of(gw.client.post("/v1/reports", json={"type": "energy_daily", **window,
                                                 "device_id": theirs}, headers=bounded),
             422, "validation_failed")  # fmt: skip
    own = run(gw, bounded, {"type": "energy_daily", **window})
    other = run(gw, headers, {"type": "energy_daily", **window})
    ready = settle(gw.client, bounded, f"/v1/reports/{own['id']}", DONE)
    assert {r["device_id"] for r in rows(httpx.get(ready["download_url"]).text)} == {mine}
    error_of(gw.client.get(f"/v1/reports/{other['id']}", headers=bounded), 404, "not_found")
    listed = gw.client.get("/v1/reports", headers=bounded).json()["data"]
    assert [r["id"] for r in listed] == [own["id"]]
    everything = settle(gw.client, headers, f"/v1/reports/{other['id']}", DONE)
    got = {r["device_id"] for r in rows(httpx.get(everything["download_url"]).text)}
    assert got == {mine, theirs}
