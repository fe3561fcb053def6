"""/readings over real HTTP in both dialects: raw pages, aggregates, stats, batch, tenancy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.store.helpers import other_org
from tests.web.conftest import REQUEST_ID, error_of

T0 = datetime(2026, 5, 24, 10, 0, tzinfo=UTC)


def z(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def at(minutes: int) -> str:
    return z(T0 + timedelta(minutes=minutes))


def stamp(minutes: int) -> str:
    return (T0 + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%S.000Z")


@pytest.fixture
def meter(api):
    """A device with power_kw readings 4.0, 1.5, 7.25, 3.0 at minutes 0-3, a comm error at
    minute 4 and 9.0 at minute 10; its sensor id; and a key that may do everything here."""
    headers = api.key("devices.write", "devices.read", "telemetry.write", "telemetry.read")
    device = api.client.post(
        "/v1/devices", json={"name": "Main incomer", "type": "http"}, headers=headers
    ).json()["data"]["id"]
    readings = [{"device_id": device, "metric": "power_kw", "ts": at(i), "value": v}
                for i, v in enumerate([4.0, 1.5, 7.25, 3.0])]  # fmt: skip
    readings.append({"device_id": device, "metric": "power_kw", "ts": at(4),
                     "quality": "comm_error"})  # fmt: skip
    readings.append({"device_id": device, "metric": "power_kw", "ts": at(10), "value": 9.0})
    ingest(api, headers, readings)
    sensors = api.client.get("/v1/sensors", params={"device_id": device}, headers=headers).json()
    (sensor,) = [s["id"] for s in sensors["data"] if s["key"] == "power_kw"]
    return api, headers, device, sensor


def ingest(api, headers, readings: list[dict]) -> None:
    answer = api.client.post("/v1/telemetry/ingest", json={"readings": readings}, headers=headers)
    assert answer.status_code == 200, answer.text


def stranger(api, *scopes: str) -> dict[str, str]:
    """A key of another organization on the same gateway."""
    return api.key(*scopes, org_id=other_org(api.runtime.store))


def test_raw_readings_page_by_cursor_in_the_snake_case_dialect(meter):
    api, headers, device, sensor = meter
    window = {"device_id": device, "metric": "power_kw", "from": at(0), "to": at(60)}
    first = api.client.get("/v1/readings", params={**window, "limit": 4}, headers=headers)
    body = first.json()
    assert first.status_code == 200
    assert body["meta"]["request_id"] == first.headers["x-request-id"]
    assert REQUEST_ID.match(body["meta"]["request_id"])
    assert body["meta"]["pagination"]["limit"] == 4
    assert body["meta"]["pagination"]["has_more"] is True
    assert body["data"][0] == {
        "device_id": device, "metric": "power_kw", "sensor_id": sensor, "ts": stamp(0),
        "value": 4.0, "quality": "good", "correction": False,
    }  # fmt: skip
    cursor = body["meta"]["pagination"]["next"]
    rest = api.client.get("/v1/readings", params={**window, "limit": 4, "cursor": cursor},
                          headers=headers).json()  # fmt: skip
    assert rest["meta"]["pagination"] == {"limit": 4, "next": None, "has_more": False}
    seen = [(r["ts"], r["value"], r["quality"]) for r in body["data"] + rest["data"]]
    assert seen == [
        (stamp(0), 4.0, "good"), (stamp(1), 1.5, "good"), (stamp(2), 7.25, "good"),
        (stamp(3), 3.0, "good"), (stamp(4), None, "comm_error"), (stamp(10), 9.0, "good"),
    ]  # fmt: skip


def test_raw_readings_by_sensor_id_in_the_camel_case_dialect_with_from_inclusive_to_exclusive(
    meter,
):
    api, headers, device, sensor = meter
    params = {"sensorId": sensor, "fromUtc": at(1), "toUtc": at(3), "pageSize": 1}
    page = api.client.get("/api/v1/readings", params=params, headers=headers).json()
    assert set(page) == {"data", "nextCursor", "hasMore"}
    assert page["hasMore"] is True
    assert page["data"] == [{"deviceId": device, "metric": "power_kw", "sensorId": sensor,
                             "ts": stamp(1), "value": 1.5, "quality": "good",
                             "correction": False}]  # fmt: skip
    last = api.client.get("/api/v1/readings", params={**params, "cursor": page["nextCursor"]},
                          headers=headers).json()  # fmt: skip
    assert [r["value"] for r in last["data"]] == [7.25]
    assert (last["hasMore"], last["nextCursor"]) == (False, None)


def test_stats_summarise_good_readings_of_the_window_in_both_dialects(meter):
    api, headers, device, sensor = meter
    window = {"device_id": device, "metric": "power_kw", "from": at(0), "to": at(10)}
    answer = api.client.get("/v1/readings/stats", params=window, headers=headers)
    body = answer.json()
    assert body["meta"]["request_id"] == answer.headers["x-request-id"]
    assert body["data"] == {
        "sensor_id": sensor, "device_id": device, "metric": "power_kw",
        "from": stamp(0), "to": stamp(10),
        "count": 4, "min": 1.5, "max": 7.25, "sum": 15.75, "avg": 3.9375,
        "first": {"ts": stamp(0), "value": 4.0}, "last": {"ts": stamp(3), "value": 3.0},
    }  # fmt: skip
    camel = api.client.get(
        "/api/v1/readings/stats",
        headers=headers,
        params={"sensorId": sensor, "fromUtc": at(1), "toUtc": at(11)},
    ).json()
    assert camel == {
        "sensorId": sensor, "deviceId": device, "metric": "power_kw",
        "from": stamp(1), "to": stamp(11),
        "count": 4, "min": 1.5, "max": 9.0, "sum": 20.75, "avg": 5.1875,
        "first": {"ts": stamp(1), "value": 1.5}, "last": {"ts": stamp(10), "value": 9.0},
    }  # fmt: skip
    empty = api.client.get(
        "/v1/readings/stats", headers=headers, params={**window, "from": at(20), "to": at(30)}
    ).json()["data"]
    assert (empty["count"], empty["min"], empty["avg"], empty["first"], empty["last"]) == (
        0, None, None, None, None)  # fmt: skip


def test_a_correction_replaces_the_value_in_raw_readings_stats_and_aggregates(meter):
    api, headers, device, sensor = meter
    ingest(api, headers, [
        {"device_id": device, "metric": "power_kw", "ts": at(1), "value": 11.5,
         "correction": True},
        # A correction may also withdraw a good value: the minute then counts for nothing.
        {"device_id": device, "metric": "power_kw", "ts": at(3), "quality": "stale",
         "correction": True},
    ])  # fmt: skip
    window = {"sensor_id": sensor, "from": at(0), "to": at(10)}
    raw = api.client.get("/v1/readings", params=window, headers=headers).json()["data"]
    assert [(r["ts"], r["value"], r["quality"], r["correction"]) for r in raw] == [
        (stamp(0), 4.0, "good", False), (stamp(1), 11.5, "good", True),
        (stamp(2), 7.25, "good", False), (stamp(3), None, "stale", True),
        (stamp(4), None, "comm_error", False),
    ]  # fmt: skip
    stats = api.client.get("/v1/readings/stats", params=window, headers=headers).json()["data"]
    assert (stats["count"], stats["min"], stats["max"], stats["sum"]) == (3, 4.0, 11.5, 22.75)
    assert stats["last"] == {"ts": stamp(2), "value": 7.25}
    summed = api.client.get(
        "/v1/readings/aggregated",
        headers=headers,
        params={**window, "interval": "10m", "fn": "sum"},
    ).json()["data"]
    assert summed == [{"ts": stamp(0), "value": 22.75, "count": 3}]


def test_aggregated_buckets_per_interval_in_both_dialects(meter):
    api, headers, device, sensor = meter
    window = {"device_id": device, "metric": "power_kw", "from": at(0), "to": at(15),
              "interval": "2m"}  # fmt: skip
    avg = api.client.get("/v1/readings/aggregated", params=window, headers=headers).json()
    assert avg["data"] == [
        {"ts": stamp(0), "value": 2.75, "count": 2},
        {"ts": stamp(2), "value": 5.125, "count": 2},
        {"ts": stamp(10), "value": 9.0, "count": 1},
    ]
    assert avg["meta"]["pagination"]["has_more"] is False
    camel = api.client.get("/api/v1/readings/aggregated", headers=headers,
                           params={"sensorId": sensor, "fromUtc": at(0), "toUtc": at(15),
                                   "interval": "5m", "fn": "max"}).json()  # fmt: skip
    assert camel == {"data": [{"ts": stamp(0), "value": 7.25, "count": 4},
                              {"ts": stamp(10), "value": 9.0, "count": 1}],
                     "nextCursor": None, "hasMore": False}  # fmt: skip
    bad_fn = api.client.get("/v1/readings/aggregated", params={**window, "fn": "median"},
                            headers=headers)  # fmt: skip
    assert error_of(bad_fn, 400, "invalid_request")["details"] == {"param": "fn"}
    year = {**window, "interval": "1d", "to": z(T0 + timedelta(days=367))}
    too_long = error_of(api.client.get("/v1/readings/aggregated", params=year, headers=headers),
                        400, "invalid_request")  # fmt: skip
    assert too_long["details"] == {"max_days": 366}


def test_a_batch_answers_each_query_on_its_own(meter):
    api, headers, device, sensor = meter
    other_device = api.client.post(
        "/v1/devices",
        json={"name": "Elsewhere", "type": "http"},
        headers=stranger(api, "devices.write"),
    ).json()["data"]["id"]
    queries = [
        {"device_id": device, "metric": "power_kw", "from": at(0), "to": at(60), "limit": 2},
        {"device_id": other_device, "metric": "power_kw", "from": at(0), "to": at(60)},
        {"sensor_id": sensor, "from": at(0), "to": z(T0 + timedelta(days=32))},
        {"sensor_id": sensor, "from": at(10), "to": at(11)},
    ]
    answer = api.client.post("/v1/readings/batch", json={"queries": queries}, headers=headers)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["meta"]["request_id"] == answer.headers["x-request-id"]
    good, foreign, too_long, last = body["data"]["results"]
    assert [good["index"], foreign["index"], too_long["index"], last["index"]] == [0, 1, 2, 3]
    assert (good["sensor_id"], good["device_id"], good["metric"]) == (sensor, device, "power_kw")
    assert [r["value"] for r in good["readings"]] == [4.0, 1.5]
    assert foreign == {"index": 1, "error": {
        "status": 404, "code": "not_found", "message": f"No device {other_device}.",
        "details": {"device_id": other_device}}}  # fmt: skip
    assert too_long["error"]["code"] == "invalid_request"
    assert too_long["error"]["details"] == {"max_days": 31}
    assert [r["value"] for r in last["readings"]] == [9.0] and last["next_cursor"] is None
    rest = api.client.get("/v1/readings", headers=headers, params={
        "device_id": device, "metric": "power_kw", "from": at(0), "to": at(60),
        "cursor": good["next_cursor"]}).json()  # fmt: skip
    assert [r["value"] for r in rest["data"]] == [7.25, 3.0, None, 9.0]


def test_a_batch_in_the_camel_case_dialect(meter):
    api, headers, device, sensor = meter
    queries = [{"sensorId": sensor, "fromUtc": at(0), "toUtc": at(60), "pageSize": 5},
               {"sensorId": "sen_missing", "from": at(0), "to": at(60)}]  # fmt: skip
    body = api.client.post("/api/v1/readings/batch", json={"queries": queries},
                           headers=headers).json()  # fmt: skip
    good, missing = body["results"]
    assert (good["sensorId"], good["deviceId"], len(good["readings"])) == (sensor, device, 5)
    assert good["readings"][0]["deviceId"] == device and good["nextCursor"]
    assert missing["error"]["code"] == "not_found"
    assert missing["error"]["status"] == 404


def test_a_malformed_batch_is_refused_whole_naming_each_bad_query(meter):
    api, headers, device, _ = meter
    url = "/v1/readings/batch"
    error_of(api.client.post(url, content=b"{not json", headers=headers), 400, "invalid_request")
    error_of(api.client.post(url, json={"query": []}, headers=headers), 422, "validation_failed")
    good = {"device_id": device, "metric": "power_kw", "from": at(0), "to": at(60)}
    fifty_one = {"queries": [good] * 51}
    error_of(api.client.post(url, json=fifty_one, headers=headers), 422, "validation_failed")
    mixed = {"queries": [good, {**good, "limit": 0}, "power_kw", {**good, "limit": 501},
                         {**good, "from": "yesterday"}]}  # fmt: skip
    errors = error_of(api.client.post(url, json=mixed, headers=headers), 422,
                      "validation_failed")["details"]["errors"]  # fmt: skip
    assert [e["index"] for e in errors] == [1, 2, 3, 4]
    assert api.client.post(url, json={"queries": [good] * 50}, headers=headers).status_code == 200


def test_another_organizations_device_or_sensor_is_not_found(meter):
    api, _, device, sensor = meter
    theirs = stranger(api, "telemetry.read")
    for prefix in ("/v1", "/api/v1"):
        for path in ("/readings", "/readings/stats", "/readings/aggregated"):
            by_device = api.client.get(
                prefix + path,
                headers=theirs,
                params={"device_id": device, "metric": "power_kw", "from": at(0), "to": at(60)},
            )
            assert error_of(by_device, 404, "not_found")["details"] == {"device_id": device}
            by_sensor = api.client.get(
                prefix + path,
                headers=theirs,
                params={"sensorId": sensor, "from": at(0), "to": at(60)},
            )
            assert error_of(by_sensor, 404, "not_found")["details"] == {"sensor_id": sensor}


def test_bad_windows_and_unnamed_series_are_400(meter):
    api, headers, device, sensor = meter
    named = {"device_id": device, "metric": "power_kw"}
    cases = [
        ({**named}, {"params": ["from", "to"]}),
        ({**named, "from": at(5), "to": at(5)}, {"params": ["from", "to"]}),
        ({**named, "from": at(0), "to": z(T0 + timedelta(days=31, seconds=1))}, {"max_days": 31}),
        ({**named, "from": "2026-05-24T10:00:00", "to": at(5)}, {"param": "from"}),
        ({"from": at(0), "to": at(5)}, {"params": ["sensor_id", "device_id", "metric"]}),
        ({"device_id": device, "from": at(0), "to": at(5)},
         {"params": ["sensor_id", "device_id", "metric"]}),
        ({**named, "sensor_id": sensor, "from": at(0), "to": at(5)},
         {"params": ["sensor_id", "device_id", "metric"]}),
        ({**named, "from": at(0), "to": at(5), "cursor": "not-a-cursor"}, {"param": "cursor"}),
    ]  # fmt: skip
    for params, details in cases:
        answer = api.client.get("/v1/readings", params=params, headers=headers)
        assert error_of(answer, 400, "invalid_request")["details"] == details, params
    exactly_31_days = {**named, "from": at(0), "to": z(T0 + timedelta(days=31))}
    assert api.client.get("/v1/readings", params=exactly_31_days, headers=headers).is_success


def test_a_metric_that_never_reported_reads_as_empty(meter):
    api, headers, device, _ = meter
    params = {"device_id": device, "metric": "voltage", "from": at(0), "to": at(60)}
    page = api.client.get("/v1/readings", params=params, headers=headers).json()
    assert page["data"] == [] and page["meta"]["pagination"]["has_more"] is False
    stats = api.client.get("/v1/readings/stats", params=params, headers=headers).json()["data"]
    assert (stats["sensor_id"], stats["count"], stats["sum"]) == (None, 0, None)
