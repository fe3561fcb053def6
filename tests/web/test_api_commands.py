"""Device health and commands over HTTP, against a simulated PLC polled by the gateway."""

from __future__ import annotations

import time

from tests.web.conftest import error_of


def wait_online(api, headers, url: str) -> dict:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        health = api.client.get(url, headers=headers).json()["data"]
        if health["status"] == "online":
            return health
        time.sleep(0.2)
    raise AssertionError(f"the device never came online: {health}")


def test_a_write_command_reaches_the_plc_is_read_back_and_audited(api, modbus_server):
    plc = modbus_server({1: "generic_plc"})
    headers = api.key("devices.read", "devices.write")
    body = {"name": "Pump station", "type": "modbus_tcp", "profile": "generic_plc",
            "connection": {"host": "127.0.0.1", "port": plc.port, "unit_id": 1}}  # fmt: skip
    device = api.client.post("/v1/devices", json=body, headers=headers).json()["data"]
    health = wait_online(api, headers, f"/v1/devices/{device['id']}/health")
    assert health["poll_success_rate"] == 1.0 and health["last_contact"].endswith("Z")
    assert health["quality"].get("good", 0) > 0
    assert health["details"]["requests"] >= 1 and health["details"]["bus"]

    url = f"/v1/devices/{device['id']}/commands"
    done = api.client.post(
        url, json={"command": "write", "point": "flow_setpoint", "value": 12.5}, headers=headers
    )
    assert done.status_code == 200, done.text
    assert done.json()["data"]["result"] == {"read_back": 12.5, "confirmed": True}
    assert plc.simulator.value(1, "flow_setpoint") == 12.5
    audit = [e for e in api.runtime.store.events(api.runtime.store.organization.id)
             if e.type == "device.command"]  # fmt: skip
    assert audit and audit[0].data["point"] == "flow_setpoint"
    assert audit[0].data["actor"].startswith("key_")

    read_only = {"command": "write", "point": "tank_level", "value": 1}
    assert "read-only" in error_of(api.client.post(url, json=read_only, headers=headers), 422,
                                   "validation_failed")["message"]  # fmt: skip
    too_high = {"command": "write", "point": "flow_setpoint", "value": 500}
    error_of(api.client.post(url, json=too_high, headers=headers), 422, "validation_failed")
    error_of(api.client.post(url, json={"command": "reboot"}, headers=headers), 422,
             "validation_failed")  # fmt: skip
    assert api.client.post(url, json={"command": "refresh_config"}, headers=headers).is_success


def test_commands_need_the_write_scope_and_an_http_device_takes_none(api):
    writer = api.key("devices.read", "devices.write")
    device = api.client.post("/v1/devices", json={"name": "x", "type": "http"},
                             headers=writer).json()["data"]  # fmt: skip
    url = f"/v1/devices/{device['id']}/commands"
    error_of(api.client.post(url, json={"command": "write"}, headers=api.key("devices.read")),
             403, "forbidden")  # fmt: skip
    error_of(api.client.post(url, json={"command": "reboot"}, headers=writer), 422,
             "validation_failed")  # fmt: skip
    health = api.client.get(f"/v1/devices/{device['id']}/health", headers=writer).json()["data"]
    assert health["status"] == "provisioning" and health["last_contact"] is None
