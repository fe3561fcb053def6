"""Telemetry over real HTTP: ingest (all or nothing, gzip, idempotent), queries, aggregates."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta

import pytest

from tests.web.conftest import error_of


@pytest.fixture
def meter(api):
    headers = api.key("devices.write", "devices.read", "telemetry.write", "telemetry.read")
    device = api.client.post(
        "/v1/devices", json={"name": "Main incomer", "type": "http"}, headers=headers
    ).json()["data"]
    return api, headers, device["id"]


def seed_readings(device_id: str, start: datetime, n: int, metric: str = "power_kw") -> list:
    return [
        {"device_id": device_id, "metric": metric,
         "ts": (start + timedelta(seconds=5 * i)).isoformat().replace("+00:00", "Z"),
         "value": 12.0 + i}
        for i in range(n)
    ]  # fmt: skip


T0 = datetime(2026, 5, 24, 10, 0, tzinfo=UTC)


def test_seed_002s_ingest_example_is_stored_and_read_back(meter):
    api, headers, dev = meter
    body = {"readings": [
        {"device_id": dev, "metric": "power_kw", "ts": "2026-05-24T10:00:00Z", "value": 12.7},
        {"device_id": dev, "metric": "power_kw", "ts": "2026-05-24T10:00:05Z", "value": 12.9},
    ]}  # fmt: skip
    answer = api.client.post("/v1/telemetry/ingest", json=body, headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.json()["data"] == {"accepted": 2}
    read = api.client.get(
        "/v1/telemetry",
        params={"device_id": dev, "metric": "power_kw", "from": "2026-05-24T10:00:00Z",
                "to": "2026-05-24T10:01:00Z"},
        headers=headers,
    ).json()  # fmt: skip
    assert [(r["ts"], r["value"]) for r in read["data"]] == [
        ("2026-05-24T10:00:00.000Z", 12.7),
        ("2026-05-24T10:00:05.000Z", 12.9),
    ]


def test_one_bad_reading_rejects_the_whole_batch_with_its_index(meter):
    api, headers, dev = meter
    readings = seed_readings(dev, T0, 3)
    readings[1]["ts"] = "yesterday"
    readings.append({"device_id": "dev_unknown", "metric": "x", "ts": "2026-05-24T10:00:00Z"})
    answer = api.client.post("/v1/telemetry/ingest", json={"readings": readings}, headers=headers)
    errors = error_of(answer, 422, "validation_failed")["details"]["errors"]
    assert [e["index"] for e in errors] == [1, 3]
    assert api.runtime.store.backlog()[0] == 0, "part of a rejected batch was stored"
    too_many = {"readings": seed_readings(dev, T0, 1001)}
    error_of(api.client.post("/v1/telemetry/ingest", json=too_many, headers=headers), 422,
             "validation_failed")  # fmt: skip


def test_gzip_bodies_and_the_camel_case_dialect_are_accepted(meter):
    api, headers, dev = meter
    camel = [{"deviceId": r["device_id"], "metric": r["metric"], "ts": r["ts"],
              "value": r["value"]} for r in seed_readings(dev, T0, 50)]  # fmt: skip
    packed = gzip.compress(json.dumps({"readings": camel}).encode())
    answer = api.client.post(
        "/api/v1/telemetry/ingest", content=packed,
        headers={**headers, "Content-Encoding": "gzip", "Content-Type": "application/json"},
    )  # fmt: skip
    assert answer.json() == {"accepted": 50}


def test_a_repeated_idempotency_key_replays_the_first_answer_and_stores_nothing_twice(meter):
    api, headers, dev = meter
    body = {"readings": seed_readings(dev, T0, 10)}
    keyed = {**headers, "Idempotency-Key": "batch-1-10"}
    first = api.client.post("/v1/telemetry/ingest", json=body, headers=keyed)
    again = api.client.post("/v1/telemetry/ingest", json=body, headers=keyed)
    assert again.status_code == 200 and again.content == first.content
    assert again.headers["idempotent-replayed"] == "true"
    assert api.runtime.store.backlog()[0] == 10
    other = {"readings": seed_readings(dev, T0, 11)}
    error_of(api.client.post("/v1/telemetry/ingest", json=other, headers=keyed), 422,
             "validation_failed")  # fmt: skip


def test_aggregates_answer_seed_002s_query_and_windows_are_bounded(meter):
    api, headers, dev = meter
    readings = seed_readings(dev, T0, 360)  # 30 minutes at 5 s
    api.client.post("/v1/telemetry/ingest", json={"readings": readings}, headers=headers)
    resp = api.client.get(
        "/v1/telemetry/aggregate",
        params={"device_id": dev, "metric": "power_kw", "from": T0.isoformat(),
                "to": (T0 + timedelta(hours=1)).isoformat(), "interval": "15m", "fn": "avg"},
        headers=headers,
    ).json()  # fmt: skip
    points = [(p["ts"], p["value"], p["count"]) for p in resp["data"]]
    assert points == [
        ("2026-05-24T10:00:00.000Z", pytest.approx(12.0 + 89.5), 180),
        ("2026-05-24T10:15:00.000Z", pytest.approx(12.0 + 269.5), 180),
    ]
    year_and_a_day = {"device_id": dev, "metric": "power_kw", "from": T0.isoformat(),
                      "to": (T0 + timedelta(days=367)).isoformat(), "interval": "1d"}  # fmt: skip
    error_of(api.client.get("/v1/telemetry/aggregate", params=year_and_a_day, headers=headers),
             400, "invalid_request")  # fmt: skip
    month_and_a_day = {"device_id": dev, "metric": "power_kw", "from": T0.isoformat(),
                       "to": (T0 + timedelta(days=32)).isoformat()}  # fmt: skip
    error_of(api.client.get("/v1/telemetry", params=month_and_a_day, headers=headers), 400,
             "invalid_request")  # fmt: skip


def test_sepolo_device_telemetry_needs_a_window_and_pages_every_metric(meter):
    api, headers, dev = meter
    readings = seed_readings(dev, T0, 5) + seed_readings(dev, T0, 5, metric="voltage")
    api.client.post("/v1/telemetry/ingest", json={"readings": readings}, headers=headers)
    url = f"/api/v1/devices/{dev}/telemetry"
    error_of(api.client.get(url, headers=headers), 400, "invalid_request")
    window = {"fromUtc": T0.isoformat(), "toUtc": (T0 + timedelta(minutes=5)).isoformat()}
    seen, cursor = [], None
    while True:
        params = {**window, "pageSize": 3, **({"cursor": cursor} if cursor else {})}
        page = api.client.get(url, params=params, headers=headers).json()
        seen += [(r["metric"], r["ts"]) for r in page["data"]]
        if not page["hasMore"]:
            break
        cursor = page["nextCursor"]
    assert len(seen) == len(set(seen)) == 10
    only = api.client.get(url, params={**window, "metrics": "voltage"}, headers=headers).json()
    assert {r["metric"] for r in only["data"]} == {"voltage"}
    assert only["data"][0]["deviceId"] == dev


def test_reading_and_writing_telemetry_need_their_scopes(meter):
    api, _, dev = meter
    reader = api.key("telemetry.read")
    body = {"readings": seed_readings(dev, T0, 1)}
    denied = error_of(api.client.post("/v1/telemetry/ingest", json=body, headers=reader), 403,
                      "forbidden")  # fmt: skip
    assert denied["details"] == {"required_scope": "telemetry.write"}


def test_a_deleted_device_takes_no_more_readings_even_just_after_sending_some(meter):
    api, headers, dev = meter
    body = {"readings": seed_readings(dev, T0, 2)}
    assert api.client.post("/v1/telemetry/ingest", json=body, headers=headers).is_success
    assert api.client.delete(f"/v1/devices/{dev}", headers=headers).status_code == 204
    late = api.client.post("/v1/telemetry/ingest", json=body, headers=headers)
    assert error_of(late, 422, "validation_failed")["details"] == {"unknown_devices": [dev]}
