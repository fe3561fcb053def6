"""`edge demo` shows BLE data on a machine without Bluetooth: its virtual sensors are adopted
devices whose readings and metrics reach the API."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from drivers.ble.simulator import DEMO_SENSORS


def test_the_demo_serves_readings_of_its_virtual_ble_sensors(gateway_factory):
    gw = gateway_factory(demo=True)
    store = gw.runtime.store
    _, secret = store.create_api_key(store.organization.id, "t", ["devices.read",
                                                                  "telemetry.read"])  # fmt: skip
    headers = {"Authorization": f"Bearer {secret}"}
    devices = gw.client.get("/v1/devices", headers=headers, params={"limit": 100}).json()["data"]
    ble = {d["name"]: d for d in devices if d["type"] == "ble"}
    assert set(ble) == {s.name for s in DEMO_SENSORS}
    since = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    deadline = time.monotonic() + 15
    heard: set[str] = set()
    while heard != set(ble) and time.monotonic() < deadline:
        for name, device in ble.items():
            to = (datetime.now(UTC) + timedelta(seconds=5)).isoformat()
            r = gw.client.get(f"/v1/devices/{device['id']}/telemetry", headers=headers,
                              params={"from": since, "to": to})  # fmt: skip
            if any(x["metric"] == "temperature" and x["quality"] == "good"
                   for x in r.json()["data"]):  # fmt: skip
                heard.add(name)
        time.sleep(0.3)
    assert heard == set(ble)
    metrics = gw.client.get("/metrics").text
    assert 'edge_ble_device_online{adapter="local:demo-' in metrics
