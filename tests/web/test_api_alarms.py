"""Alarms over real HTTP: rules raise and clear on readings as they commit, in both dialects;
events, acknowledgements, clears and comments keep an audit trail."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from tests.web.conftest import error_of

SCOPES = ("devices.read", "devices.write", "telemetry.write", "incidents.read", "events.write")


def wait_for(check, timeout: float = 15.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.25)  # well inside the read bucket's refill rate
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def tank(api):
    headers = api.key(*SCOPES)
    body = {"name": "Tank", "type": "http", "points": [{"key": "level"}]}
    device = api.client.post("/v1/devices", json=body, headers=headers).json()["data"]
    return api, headers, device["id"]


def send(api, headers, device_id: str, *values: float, metric: str = "level") -> None:
    now = datetime.now(UTC)
    readings = [{"device_id": device_id, "metric": metric, "value": v,
                 "ts": (now + timedelta(milliseconds=i)).isoformat().replace("+00:00", "Z")}
                for i, v in enumerate(values)]  # fmt: skip
    answer = api.client.post("/v1/telemetry/ingest", json={"readings": readings}, headers=headers)
    assert answer.status_code == 200, answer.text


def alerts(api, headers, state: str | None = None) -> list[dict]:
    params = {"state": state} if state else {}
    return api.client.get("/v1/alerts", params=params, headers=headers).json()["data"]


def test_a_threshold_rule_raises_once_and_clears_only_past_its_hysteresis(tank):
    api, headers, device = tank
    body = {"name": "High level", "kind": "threshold", "device_id": device, "metric": "level",
            "params": {"op": ">", "value": 80, "hysteresis": 5},
            "severity": "critical"}  # fmt: skip
    made = api.client.post("/v1/alert-rules", json=body, headers=headers)
    assert made.status_code == 201, made.text
    time.sleep(0.1)
    send(api, headers, device, 50, 85, 90)  # crosses once: one alarm, not two
    raised = wait_for(lambda: alerts(api, headers, "active"), what="the alarm")
    assert len(raised) == 1 and raised[0]["value"] == 85.0 and raised[0]["severity"] == "critical"
    send(api, headers, device, 78)  # under 80 but within the hysteresis: stays active
    time.sleep(0.5)
    assert len(alerts(api, headers, "active")) == 1
    send(api, headers, device, 74)
    wait_for(lambda: alerts(api, headers, "cleared"), what="the clear")
    assert alerts(api, headers, "active") == []
    events = api.client.get("/v1/events", params={"device_id": device},
                            headers=headers).json()["data"]  # fmt: skip
    assert [e["type"] for e in events][:2] == ["alarm.cleared", "alarm.raised"]
    assert events[1]["data"]["alarm_id"] == raised[0]["id"]


def test_ack_clear_and_comment_keep_a_trail_in_both_dialects(tank):
    api, headers, device = tank
    body = {"name": "Low", "kind": "threshold", "deviceId": device, "metric": "level",
            "params": {"op": "<", "value": 10}}  # fmt: skip
    assert api.client.post("/api/v1/alert-rules", json=body, headers=headers).status_code == 201
    time.sleep(0.1)
    send(api, headers, device, 5)
    alarm = wait_for(lambda: alerts(api, headers, "active"), what="the alarm")[0]
    raised_event = api.client.get("/v1/events", params={"type": "alarm.raised"},
                                  headers=headers).json()["data"][0]  # fmt: skip
    assert raised_event["acknowledged"] is False
    # Acknowledge by the event's id (seed 002), comment and clear by the alarm's.
    acked = api.client.post(f"/api/v1/events/{raised_event['id']}/ack",
                            json={"text": "on my way"}, headers=headers)  # fmt: skip
    assert acked.status_code == 200 and acked.json()["state"] == "acknowledged"
    assert acked.json()["acknowledgedBy"].startswith("key_")
    error_of(api.client.post(f"/v1/events/{alarm['id']}/ack", headers=headers), 422,
             "validation_failed")  # fmt: skip
    noted = api.client.post(f"/v1/events/{alarm['id']}/comment",
                            json={"text": "valve replaced"}, headers=headers)  # fmt: skip
    assert noted.status_code == 200
    error_of(api.client.post(f"/v1/events/{alarm['id']}/comment", json={},
                             headers=headers), 422, "validation_failed")  # fmt: skip
    cleared = api.client.post(f"/v1/events/{alarm['id']}/clear", headers=headers).json()["data"]
    assert cleared["state"] == "cleared"
    assert [t["action"] for t in cleared["trail"]] == ["ack", "comment", "clear"]
    assert cleared["trail"][0]["text"] == "on my way"
    assert api.client.get("/v1/events", params={"acknowledged": "false"},
                          headers=headers).json()["data"] == []  # fmt: skip
    incidents = api.client.get("/api/v1/incidents", params={"state": 2}, headers=headers).json()
    assert [i["id"] for i in incidents["data"]] == [alarm["id"]]
    assert incidents["data"][0]["stateName"] == "cleared"
    error_of(api.client.post("/v1/events/alm_nope/ack", headers=headers), 404, "not_found")


def test_rules_are_validated_versioned_and_deleting_one_clears_its_alarm(tank):
    api, headers, device = tank
    post = lambda body: api.client.post("/v1/alert-rules", json=body, headers=headers)  # noqa: E731
    base = {"name": "r", "kind": "threshold", "device_id": device, "metric": "level",
            "params": {"op": ">", "value": 1}}  # fmt: skip
    for broken in ({**base, "kind": "magic"}, {**base, "params": {"op": "!=", "value": 1}},
                   {**base, "severity": "panic"}, {**base, "metric": None},
                   {**base, "params": {"op": ">", "value": 1, "colour": "red"}}):  # fmt: skip
        error_of(post(broken), 422, "validation_failed")
    error_of(post({**base, "device_id": "dev_nope"}), 404, "not_found")
    rule = post(base).json()["data"]
    url = f"/v1/alert-rules/{rule['id']}"
    stale = {**headers, "If-Match": rule["etag"]}
    assert api.client.patch(url, json={"severity": "info"}, headers=stale).is_success
    error_of(api.client.patch(url, json={"name": "x"}, headers=stale), 409, "conflict")
    error_of(api.client.patch(url, json={"params": {"op": ">"}}, headers=headers), 422,
             "validation_failed")  # fmt: skip
    time.sleep(0.1)
    send(api, headers, device, 5)
    wait_for(lambda: alerts(api, headers, "active"), what="the alarm")
    assert api.client.delete(url, headers=headers).status_code == 204
    assert alerts(api, headers, "active") == []
    error_of(api.client.get(url, headers=headers), 404, "not_found")


def test_no_data_and_rate_of_change_rules(tank):
    api, headers, device = tank
    silent = {"name": "Silent", "kind": "no_data", "device_id": device, "metric": "level",
              "params": {"silence_s": 1}}  # fmt: skip
    jump = {"name": "Jump", "kind": "rate_of_change", "device_id": device, "metric": "level",
            "params": {"op": ">", "rate_per_s": 100}}  # fmt: skip
    for body in (silent, jump):
        assert api.client.post("/v1/alert-rules", json=body, headers=headers).status_code == 201
    raised = wait_for(lambda: alerts(api, headers, "active"), what="the silence alarm")
    assert raised[0]["message"] == "Silent: no data for 1 s"
    now = datetime.now(UTC)
    readings = [{"device_id": device, "metric": "level", "value": v,
                 "ts": (now + timedelta(seconds=i)).isoformat().replace("+00:00", "Z")}
                for i, v in enumerate([10, 20, 500])]  # fmt: skip
    api.client.post("/v1/telemetry/ingest", json={"readings": readings}, headers=headers)
    active = wait_for(lambda: [a for a in alerts(api, headers, "active")
                               if a["message"].startswith("Jump")], what="the jump")  # fmt: skip
    assert active[0]["value"] == 500.0
    assert not [a for a in alerts(api, headers, "active") if a["message"].startswith("Silent")]


def test_an_offline_device_raises_and_clears_an_alarm(api, modbus_server):
    headers = api.key(*SCOPES)
    plc = modbus_server({1: "generic_plc"})
    body = {"name": "PLC", "type": "modbus_tcp", "profile": "generic_plc",
            "connection": {"host": "127.0.0.1", "port": plc.port, "unit_id": 1}}  # fmt: skip
    device = api.client.post("/v1/devices", json=body, headers=headers).json()["data"]["id"]
    rule = {"name": "PLC down", "kind": "device_offline", "device_id": device}
    assert api.client.post("/v1/alert-rules", json=rule, headers=headers).status_code == 201
    health = f"/v1/devices/{device}/health"
    wait_for(lambda: api.client.get(health, headers=headers).json()["data"]["status"] == "online",
             what="online")  # fmt: skip
    plc.stop()
    wait_for(lambda: alerts(api, headers, "active"), timeout=20, what="the offline alarm")
    plc.start()
    wait_for(lambda: alerts(api, headers, "cleared"), timeout=30, what="the clear")


def test_a_threshold_rule_fires_and_clears_on_readings_polled_from_a_simulated_plc(
    api, modbus_server
):
    headers = api.key(*SCOPES)
    plc = modbus_server({1: "generic_plc"})
    body = {"name": "Pump station", "type": "modbus_tcp", "profile": "generic_plc",
            "connection": {"host": "127.0.0.1", "port": plc.port, "unit_id": 1}}  # fmt: skip
    device = api.client.post("/v1/devices", json=body, headers=headers).json()["data"]["id"]
    rule = {"name": "Flow setpoint high", "kind": "threshold", "device_id": device,
            "metric": "flow_setpoint", "params": {"op": ">", "value": 20, "hysteresis": 2},
            "severity": "warning"}  # fmt: skip
    assert api.client.post("/v1/alert-rules", json=rule, headers=headers).status_code == 201
    health = f"/v1/devices/{device}/health"
    wait_for(lambda: api.client.get(health, headers=headers).json()["data"]["status"] == "online",
             what="online")  # fmt: skip
    commands = f"/v1/devices/{device}/commands"

    def write(value: float) -> None:
        order = {"command": "write", "point": "flow_setpoint", "value": value}
        done = api.client.post(commands, json=order, headers=headers)
        assert done.status_code == 200, done.text

    write(12.0)
    time.sleep(1.5)  # polled below the threshold: nothing raised
    assert alerts(api, headers) == []
    write(25.0)
    [raised] = wait_for(lambda: alerts(api, headers, "active"), what="the alarm")
    assert raised["value"] == 25.0 and raised["device_id"] == device
    write(19.0)  # under 20 but within the hysteresis: still active
    time.sleep(1.5)
    assert [a["id"] for a in alerts(api, headers, "active")] == [raised["id"]]
    write(10.0)
    [cleared] = wait_for(lambda: alerts(api, headers, "cleared"), what="the clear")
    assert cleared["id"] == raised["id"]
