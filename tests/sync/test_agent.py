"""The sync agent against a second gateway as its upstream, in this process over real HTTP."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from edge import settings as settings_mod
from edge.models import Quality, Reading

T0 = datetime(2026, 5, 24, 10, 0, tzinfo=UTC)


def wait_for(check, timeout: float = 30.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def pair(gateway_factory, tmp_path):
    """(downstream, upstream, upstream admin headers): the downstream syncs to the upstream."""
    up_settings = settings_mod.load(
        None, {}, data_dir=str(tmp_path / "up"), http={"host": "127.0.0.1", "port": 0}
    )
    upstream = gateway_factory(settings_=up_settings)
    store = upstream.runtime.store
    _, secret = store.create_api_key(store.organization.id, "downstream", ["admin"])

    def downstream(**sync):
        down_settings = settings_mod.load(
            None,
            {},
            data_dir=str(tmp_path / "down"),
            http={"host": "127.0.0.1", "port": 0},
            sync={"upstream_url": upstream.url + "/v1", "api_key": secret, "idle_s": 0.05,
                  "pull_interval_s": 0.5, "timeout_s": 5, **sync},
        )  # fmt: skip
        gw = gateway_factory(settings_=down_settings)
        _, key = gw.runtime.store.create_api_key(gw.runtime.store.organization.id, "t", ["admin"])
        gw.headers = {"Authorization": f"Bearer {key}"}
        return gw

    return downstream, upstream, {"Authorization": f"Bearer {secret}"}


def ingest(gw, device_id: str, n: int, start: int = 0, metric: str = "power_kw") -> None:
    for base in range(start, start + n, 1000):
        readings = [
            {"device_id": device_id, "metric": metric,
             "ts": (T0 + timedelta(seconds=i)).isoformat().replace("+00:00", "Z"), "value": i}
            for i in range(base, min(base + 1000, start + n))
        ]  # fmt: skip
        answer = gw.client.post("/v1/telemetry/ingest", json={"readings": readings},
                                headers=gw.headers)  # fmt: skip
        assert answer.status_code == 200, answer.text


def upstream_values(upstream, headers, device_id: str, metric: str = "power_kw") -> list[float]:
    values, cursor = [], None
    while True:
        params = {"device_id": device_id, "metric": metric, "limit": 500,
                  "from": "2026-05-24T00:00:00Z", "to": "2026-06-20T00:00:00Z"}  # fmt: skip
        if cursor:
            params["cursor"] = cursor
        page = upstream.client.get("/v1/telemetry", params=params, headers=headers).json()
        values += [r["value"] for r in page["data"]]
        cursor = page["meta"]["pagination"]["next"]
        if not cursor:
            return values


def test_readings_of_a_device_born_here_reach_the_upstream_once_under_the_same_id(pair):
    downstream, upstream, up_headers = pair
    down = downstream()
    device = down.client.post("/v1/devices", json={"name": "Incomer", "type": "http"},
                              headers=down.headers).json()["data"]  # fmt: skip
    ingest(down, device["id"], 2500)
    store = down.runtime.store
    wait_for(lambda: store.backlog()[0] == 0, what="the backlog to drain")
    there = upstream.client.get(f"/v1/devices/{device['id']}", headers=up_headers)
    assert there.status_code == 200 and there.json()["data"]["name"] == "Incomer"
    assert upstream_values(upstream, up_headers, device["id"]) == [float(i) for i in range(2500)]
    status = down.client.get("/v1/admin/sync", headers=down.headers).json()["data"]
    assert status["state"] == "online" and status["readings_sent"] == 2500
    assert status["backlog_readings"] == 0 or status["backlog_readings"] is not None
    assert store.sync_pending() == []


def test_a_poison_reading_is_quarantined_and_the_rest_goes_through(pair):
    downstream, upstream, up_headers = pair
    down = downstream()
    body = {"name": "Meter", "type": "http", "points": [{"key": "power_kw"}]}
    device = down.client.post("/v1/devices", json=body, headers=down.headers).json()["data"]
    store = down.runtime.store
    point = store.points(store.organization.id, device["id"])[0].id
    start = int(T0.timestamp() * 1000)
    # A good reading without a value: the upstream refuses it (422).
    readings = [Reading(point, start + i * 1000, float(i), Quality.GOOD) for i in range(300)]
    readings[123] = Reading(point, start + 123_000, None, Quality.GOOD)
    store.append_readings(readings)
    wait_for(lambda: store.backlog()[0] == 0, what="the backlog to drain")
    values = upstream_values(upstream, up_headers, device["id"])
    assert values == [float(i) for i in range(300) if i != 123]
    listed = down.client.get("/v1/admin/quarantine", headers=down.headers).json()["data"]
    assert len(listed) == 1 and listed[0]["status"] == 422
    assert listed[0]["ts"] == "2026-05-24T10:02:03.000Z"
    assert listed[0]["error"]["error"]["code"] == "validation_failed"
    discarded = down.client.post(f"/v1/admin/quarantine/{listed[0]['id']}/discard",
                                 headers=down.headers)  # fmt: skip
    assert discarded.status_code == 200
    assert down.client.get("/v1/admin/quarantine", headers=down.headers).json()["data"] == []


def test_devices_sites_and_groups_created_upstream_appear_and_poll_here(pair, modbus_server):
    downstream, upstream, up_headers = pair
    down = downstream()
    site = upstream.client.post("/v1/sites", json={"name": "Plant", "customer_id": "cus_1"},
                                headers=up_headers).json()["data"]  # fmt: skip
    plc = modbus_server({1: "generic_plc"})
    body = {"name": "Pump station", "type": "modbus_tcp", "profile": "generic_plc",
            "site_id": site["id"], "movement": {"metric": "inlet_flow", "threshold": 15.0},
            "connection": {"host": "127.0.0.1", "port": plc.port, "unit_id": 1}}  # fmt: skip
    made = upstream.client.post("/v1/devices", json=body, headers=up_headers).json()["data"]
    url = f"/v1/devices/{made['id']}/health"

    def polled():
        answer = down.client.get(url, headers=down.headers)
        return answer.status_code == 200 and answer.json()["data"]["status"] == "online"

    wait_for(polled, what="the pulled device to be polled")
    here = down.client.get(f"/v1/devices/{made['id']}", headers=down.headers).json()["data"]
    assert here["site_id"] == site["id"] and here["profile"] == "generic_plc"
    assert here["movement"] == made["movement"] and here["movement"]["threshold"] == 15.0
    sites = down.client.get("/v1/sites", headers=down.headers).json()["data"]
    assert [(s["id"], s["customer_id"]) for s in sites] == [(site["id"], "cus_1")]

    up_sensors = upstream.client.get("/v1/sensors", params={"device_id": made["id"]},
                                     headers=up_headers).json()["data"]  # fmt: skip
    part = {"device_id": made["id"], "name": "Pump 1", "sensor_ids": [up_sensors[0]["id"]]}
    component = upstream.client.post("/v1/components", json=part,
                                     headers=up_headers).json()["data"]  # fmt: skip
    here_part = wait_for(lambda: (r := down.client.get(f"/v1/components/{component['id']}",
                                                       headers=down.headers)).is_success
                         and r.json()["data"], what="the component")  # fmt: skip
    listed = down.client.get("/v1/sensors", params={"device_id": made["id"]},
                             headers=down.headers).json()["data"]  # fmt: skip
    local = {s["id"]: s["key"] for s in listed}
    assert [local[s] for s in here_part["sensor_ids"]] == [up_sensors[0]["key"]]
    stricter = {"metric": "inlet_flow", "threshold": 20.0}
    renamed = upstream.client.patch(f"/v1/devices/{made['id']}",
                                    json={"name": "Pumps", "movement": stricter},
                                    headers=up_headers)  # fmt: skip
    assert renamed.is_success
    changed = wait_for(lambda: (d := down.client.get(f"/v1/devices/{made['id']}",
                                                     headers=down.headers).json()["data"])
                       ["name"] == "Pumps" and d, what="the rename")  # fmt: skip
    assert changed["movement"]["threshold"] == 20.0
    assert upstream.client.delete(f"/v1/devices/{made['id']}", headers=up_headers).is_success
    wait_for(lambda: down.client.get(f"/v1/devices/{made['id']}", headers=down.headers)
             .status_code == 404, what="the deletion")  # fmt: skip


def test_a_quarantined_reading_retried_after_the_cause_is_fixed_leaves_quarantine(pair):
    downstream, upstream, up_headers = pair
    # The gateway's upstream key may only place devices in one group, so registering a new
    # device fails and its readings are refused until an upstream admin places it there.
    up_store = upstream.runtime.store
    group = up_store.create_device_group(up_store.organization.id, "Gateways")
    _, limited = up_store.create_api_key(up_store.organization.id, "gw", ["admin"],
                                         groups=[group.id])  # fmt: skip
    down = downstream(api_key=limited)
    device = down.client.post("/v1/devices", json={"name": "Meter", "type": "http"},
                              headers=down.headers).json()["data"]  # fmt: skip
    ingest(down, device["id"], 3)
    store = down.runtime.store

    def quarantined():
        found = down.client.get("/v1/admin/quarantine", headers=down.headers).json()["data"]
        return found if len(found) == 3 else None

    listed = wait_for(quarantined, what="three quarantined readings")
    assert {q["value"] for q in listed} == {0.0, 1.0, 2.0}
    assert all(q["status"] == 422 for q in listed)
    assert store.backlog()[0] == 0  # the watermark passed them: later readings still flow
    placed = {"id": device["id"], "name": "Meter", "type": "http", "group_id": group.id}
    assert upstream.client.post("/v1/devices", json=placed, headers=up_headers).status_code == 201
    for item in listed:
        retried = down.client.post(f"/v1/admin/quarantine/{item['id']}/retry",
                                   headers=down.headers)  # fmt: skip
        assert retried.status_code == 202 and retried.json()["data"]["retry_pending"]
    wait_for(lambda: down.client.get("/v1/admin/quarantine", headers=down.headers)
             .json()["data"] == [], what="the retries")  # fmt: skip
    assert sorted(upstream_values(upstream, up_headers, device["id"])) == [0.0, 1.0, 2.0]
    ingest(down, device["id"], 2, start=3)
    wait_for(lambda: len(upstream_values(upstream, up_headers, device["id"])) == 5,
             what="later readings")  # fmt: skip


def test_without_an_upstream_the_agent_idles_and_keeps_every_reading(gateway_factory):
    gw = gateway_factory()
    store = gw.runtime.store
    _, key = store.create_api_key(store.organization.id, "t", ["admin"])
    gw.headers = {"Authorization": f"Bearer {key}"}
    device = gw.client.post("/v1/devices", json={"name": "m", "type": "http"},
                            headers=gw.headers).json()["data"]  # fmt: skip
    ingest(gw, device["id"], 50)
    time.sleep(0.3)
    status = gw.client.get("/api/v1/admin/sync", headers=gw.headers).json()
    assert status["state"] == "not_configured" and store.backlog()[0] == 50


def test_upstream_rules_alarm_here_offline_and_actions_taken_here_reach_the_upstream(pair):
    downstream, upstream, up_headers = pair
    down = downstream()
    body = {"name": "Tank", "type": "http", "points": [{"key": "level"}]}
    device = upstream.client.post("/v1/devices", json=body, headers=up_headers).json()["data"]
    rule = {"name": "High level", "kind": "threshold", "device_id": device["id"],
            "metric": "level", "params": {"op": ">", "value": 80}}  # fmt: skip
    made = upstream.client.post("/v1/alert-rules", json=rule, headers=up_headers).json()["data"]
    wait_for(lambda: down.client.get(f"/v1/alert-rules/{made['id']}", headers=down.headers)
             .status_code == 200, what="the rule pulled")  # fmt: skip
    ingest(down, device["id"], 1, start=0, metric="level")  # 0.0: below the threshold
    readings = [{"device_id": device["id"], "metric": "level", "value": 95.0,
                 "ts": "2026-05-24T10:05:00Z"}]  # fmt: skip
    down.client.post("/v1/telemetry/ingest", json={"readings": readings}, headers=down.headers)

    def active(gw, headers):
        found = gw.client.get("/v1/alerts", params={"rule_id": made["id"]}, headers=headers)
        return found.json()["data"]

    here = wait_for(lambda: active(down, down.headers), what="the alarm here")[0]
    there = wait_for(lambda: active(upstream, up_headers), what="the alarm upstream")[0]
    assert here["id"] != there["id"] and here["raised_at"] == there["raised_at"]
    url = f"/v1/events/{here['id']}"
    assert down.client.post(f"{url}/ack", json={"text": "seen"}, headers=down.headers).is_success
    assert down.client.post(f"{url}/comment", json={"text": "valve stuck"},
                            headers=down.headers).is_success  # fmt: skip
    assert down.client.post(f"{url}/clear", headers=down.headers).is_success

    def carried():
        alarm = upstream.client.get(f"/v1/alerts/{there['id']}", headers=up_headers).json()
        trail = alarm["data"]["trail"]
        return (
            alarm["data"] if [t["action"] for t in trail] == ["ack", "comment", "clear"] else None
        )

    upstream_alarm = wait_for(carried, what="the actions upstream")
    assert upstream_alarm["state"] == "cleared"
    assert [t["text"] for t in upstream_alarm["trail"]] == ["seen", "valve stuck", None]
    # Marked carried once the upstream answered (just after the upstream applied it).
    wait_for(lambda: down.runtime.store.unsynced_alarm_actions() == [], what="marked carried")


def test_the_uplink_is_back_only_when_pushes_and_pulls_both_work(settings, store, run):
    from edge.runtime import Runtime
    from edge.supervisor import Supervisor
    from sync.agent import SyncAgent

    agent = SyncAgent(Runtime(settings, store, Supervisor(settings.supervisor)))

    async def story() -> list[str]:
        await agent._lost("push", "POST /telemetry/ingest: 429 rate limited")
        await agent._restored("pull")  # pulls work, pushes are still throttled
        states = [agent.state]
        await agent._restored("push")
        return [*states, agent.state]

    assert run(story()) == ["offline", "online"]
    types = [e.type for e in store.events(store.organization.id)]
    assert types.count("sync.uplink_lost") == 1 and types.count("sync.uplink_restored") == 1
