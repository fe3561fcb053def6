"""`/devices/{id}/movements` over real HTTP in both dialects: windows derived from ingested
telemetry by the device's movement setting, anomalies, paging and refusals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.web.conftest import error_of

T0 = datetime(2026, 5, 24, 6, 0, tzinfo=UTC)
STEP_S = 10
MOVEMENT = {"metric": "current_a", "threshold": 5.0, "hysteresis": 1.0}


def z(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def profile() -> list[tuple[float, float]]:
    """(seconds after T0, amps): eight 60 s runs, one of 600 s, then one still running."""
    samples, t = [], 0.0
    for run_s in [60] * 8 + [600]:
        samples += [(t + i * STEP_S, 0.2) for i in range(12)]  # 120 s idle
        t += 12 * STEP_S
        samples += [(t + i * STEP_S, 10.0 + (i % 2) * 0.5) for i in range(run_s // STEP_S)]
        t += run_s
    samples += [(t, 0.1), (t + STEP_S, 4.5), (t + 2 * STEP_S, 8.0), (t + 3 * STEP_S, 8.2)]
    return samples


@pytest.fixture
def pump(api):
    headers = api.key("devices.write", "devices.read", "telemetry.write", "movements.read")
    made = api.client.post(
        "/v1/devices",
        json={"name": "Pump 3", "type": "http", "movement": MOVEMENT,
              "points": [{"key": "current_a", "unit": "A", "interval_s": STEP_S}]},
        headers=headers,
    )  # fmt: skip
    assert made.status_code == 201, made.text
    device = made.json()["data"]
    readings = [{"device_id": device["id"], "metric": "current_a",
                 "ts": z(T0 + timedelta(seconds=s)), "value": v} for s, v in profile()]  # fmt: skip
    answer = api.client.post("/v1/telemetry/ingest", json={"readings": readings}, headers=headers)
    assert answer.status_code == 200, answer.text
    return api, headers, device


def window(**extra):
    return {"from": z(T0), "to": z(T0 + timedelta(days=1)), **extra}


def test_the_device_keeps_its_movement_setting_with_defaults_filled_in(pump):
    _, _, device = pump
    assert device["movement"] == {**MOVEMENT, "min_duration_s": 0.0, "baseline_days": 30}


def test_runs_become_movements_and_the_long_one_is_an_anomaly(pump):
    api, headers, device = pump
    got = api.client.get(f"/v1/devices/{device['id']}/movements", params=window(),
                         headers=headers)  # fmt: skip
    assert got.status_code == 200, got.text
    found = got.json()["data"]
    assert [m["duration_seconds"] for m in found] == [60.0] * 8 + [600.0, 10.0]
    first, long_one, running = found[0], found[8], found[9]
    assert first["started_at"] == z(T0 + timedelta(seconds=120)).replace("Z", ".000Z")
    assert first["ended_at"] == z(T0 + timedelta(seconds=180)).replace("Z", ".000Z")
    assert first["values"] == {"unit": "A", "samples": 6, "min": 10.0, "max": 10.5,
                               "avg": pytest.approx(10.25)}  # fmt: skip
    assert first["anomaly"]["baseline_movements"] == 0
    assert not first["anomaly"]["is_anomaly"]
    assert long_one["anomaly"]["is_anomaly"]
    assert long_one["anomaly"]["reasons"] == ["duration_above_usual"]
    assert long_one["anomaly"]["usual_duration_seconds"]["median"] == 60.0
    assert long_one["anomaly"]["baseline_movements"] == 8
    # The last run rose through the hysteresis band (4.5 A is not yet a start) and goes on.
    assert running["ongoing"] and running["ended_at"] is None
    assert running["values"]["samples"] == 2
    assert not any(m["anomaly"]["is_anomaly"] for i, m in enumerate(found) if i != 8)


def test_sepolos_dialect_spells_it_in_camel_case_and_filters_by_minimum_duration(pump):
    api, headers, device = pump
    got = api.client.get(
        f"/api/v1/devices/{device['id']}/movements",
        params={"fromUtc": z(T0), "toUtc": z(T0 + timedelta(hours=6)), "minDurationSeconds": 300},
        headers=headers,
    )
    assert got.status_code == 200, got.text
    body = got.json()
    assert body["hasMore"] is False and body["nextCursor"] is None
    [movement] = body["data"]
    assert movement["durationSeconds"] == 600.0
    assert movement["deviceId"] == device["id"]
    assert movement["anomaly"]["isAnomaly"] is True
    assert movement["anomaly"]["usualDurationSeconds"]["median"] == 60.0


def test_pages_follow_each_other_without_gaps_or_repeats(pump):
    api, headers, device = pump
    seen, cursor = [], None
    while True:
        params = window(pageSize=3, **({"cursor": cursor} if cursor else {}))
        body = api.client.get(f"/api/v1/devices/{device['id']}/movements", params=params,
                              headers=headers).json()  # fmt: skip
        assert len(body["data"]) <= 3
        seen += [m["id"] for m in body["data"]]
        if not body["hasMore"]:
            break
        cursor = body["nextCursor"]
    assert len(seen) == len(set(seen)) == 10


def test_a_device_without_a_movement_setting_has_none_until_one_is_set(pump):
    api, headers, device = pump
    path = f"/v1/devices/{device['id']}"
    cleared = api.client.patch(path, json={"movement": None}, headers=headers)
    assert cleared.status_code == 200 and cleared.json()["data"]["movement"] is None
    assert (
        api.client.get(f"{path}/movements", params=window(), headers=headers).json()["data"] == []
    )
    stricter = {"metric": "current_a", "threshold": 10.4}
    api.client.patch(path, json={"movement": stricter}, headers=headers)
    found = api.client.get(f"{path}/movements", params=window(), headers=headers).json()["data"]
    assert {m["values"]["min"] for m in found} == {10.5}


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        ({}, 400, "invalid_request"),
        ({"from": z(T0), "to": z(T0 + timedelta(days=32))}, 400, "invalid_request"),
        ({"from": z(T0), "to": z(T0)}, 400, "invalid_request"),
        (window(cursor="not-a-cursor"), 400, "invalid_request"),
        (window(minDurationSeconds=-1), 400, "invalid_request"),
    ],
)
def test_bad_windows_and_cursors_get_the_error_body(pump, params, status, code):
    api, headers, device = pump
    got = api.client.get(f"/v1/devices/{device['id']}/movements", params=params, headers=headers)
    error_of(got, status, code)


def test_bad_settings_unknown_devices_missing_metrics_and_scopes_are_refused(pump):
    api, headers, device = pump
    path = f"/v1/devices/{device['id']}"
    bad = api.client.patch(path, json={"movement": {"metric": "current_a"}}, headers=headers)
    assert "threshold" in error_of(bad, 422, "validation_failed")["message"]
    hot = {"name": "x", "type": "http", "movement": {"metric": "a", "threshold": "hot"}}
    refused = api.client.post("/v1/devices", json=hot, headers=headers)
    error_of(refused, 422, "validation_failed")
    listed = api.client.get("/v1/devices", headers=headers).json()["data"]
    assert [d["name"] for d in listed] == ["Pump 3"]  # the refused device was not made
    api.client.patch(path, json={"movement": {"metric": "flow", "threshold": 1}}, headers=headers)
    missing = api.client.get(f"{path}/movements", params=window(), headers=headers)
    assert "flow" in error_of(missing, 422, "validation_failed")["message"]
    error_of(api.client.get("/v1/devices/dev_nope/movements", params=window(), headers=headers),
             404, "not_found")  # fmt: skip
    reader = api.key("devices.read")
    error_of(api.client.get(f"{path}/movements", params=window(), headers=reader), 403,
             "forbidden")  # fmt: skip
