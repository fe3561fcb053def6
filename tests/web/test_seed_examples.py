"""The clouds' own examples, run against the gateway with only the host (and key) changed."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, timedelta

import pytest

from edge import settings as settings_mod
from edge.models import Device


@pytest.fixture
def acme(gateway_factory, tmp_path, monkeypatch):
    """A gateway whose organization is seed 002's tenant, with its dev_42 and a key."""
    settings = settings_mod.load(
        None, {}, data_dir=str(tmp_path / "acme"), http={"host": "127.0.0.1", "port": 0},
        gateway={"organization": "acme-industries"},
    )  # fmt: skip
    gw = gateway_factory(settings_=settings)
    store = gw.runtime.store
    org = store.organization.id
    store.create_device(Device(id="dev_42", org_id=org, name="Press line 4", type="http"))
    _, key = store.create_api_key(org, "acme-erp-sync", ["admin"])
    monkeypatch.setenv("SGT_API_KEY", key)
    return gw, key


def curl(*args: str) -> dict:
    done = subprocess.run(["curl", "-sS", *args], capture_output=True, text=True, timeout=30,
                          check=True)  # fmt: skip
    return json.loads(done.stdout)


def test_seed_002s_curl_calls(acme):
    gw, key = acme
    listed = curl(
        f"{gw.url}/v1/devices?limit=20",
        "-H",
        f"Authorization: Bearer {key}",
        "-H",
        "X-SGT-Tenant: acme-industries",
        "-H",
        "User-Agent: acme-erp-sync/1.4.2",
    )
    assert [d["id"] for d in listed["data"]] == ["dev_42"]
    ingested = curl(
        "-X", "POST", f"{gw.url}/v1/telemetry/ingest",
        "-H", f"Authorization: Bearer {key}",
        "-H", "Content-Type: application/json",
        "-d", """{
    "readings": [
      {"device_id":"dev_42","metric":"power_kw","ts":"2026-05-24T10:00:00Z","value":12.7},
      {"device_id":"dev_42","metric":"power_kw","ts":"2026-05-24T10:00:05Z","value":12.9}
    ]
  }""",
    )  # fmt: skip
    assert ingested["data"] == {"accepted": 2}


def test_seed_000_and_001s_curl_calls(acme):
    gw, key = acme
    me = curl(f"{gw.url}/api/v1/me", "-H", f"X-Sepolo-Api-Key: {key}")
    assert me["organizationId"] == gw.runtime.store.organization.id
    token = curl(
        "-X", "POST", f"{gw.url}/api/v1/devices/registration/tokens",
        "-H", f"Authorization: Bearer {key}",
        "-H", "Content-Type: application/json",
        "-d", '{ "deviceName": "warehouse-gateway-01" }',
    )  # fmt: skip
    assert token["deviceName"] == "warehouse-gateway-01" and token["token"]


def test_seed_002s_python_client_runs_unchanged_but_for_the_host(acme):
    gw, _ = acme
    now = datetime.now(UTC)
    readings = [
        {"device_id": "dev_42", "metric": "power_kw",
         "ts": (now - timedelta(minutes=m)).isoformat(), "value": float(m)}
        for m in range(1, 90)
    ]  # fmt: skip
    gw.client.post("/v1/telemetry/ingest", json={"readings": readings},
                   headers={"Authorization": f"Bearer {acme[1]}"})  # fmt: skip
    printed: list[tuple] = []
    # Seed 002's example, as published; only API's host differs.
    source = """
import os, time, random
import requests
from datetime import datetime, timedelta, timezone
API = "HOST/v1"
headers = {
"Authorization": f"Bearer {os.environ['SGT_API_KEY']}",
"X-SGT-Tenant": "acme-industries",
"User-Agent": "acme-erp-sync/1.4.2",
}
def get_with_retry(url, params, max_attempts=5):
    for attempt in range(max_attempts):
        r = requests.get(url, headers=headers, params=params, timeout=30)
        if r.status_code == 429:
            wait = int(r.headers.get("Retry-After", "5"))
            time.sleep(wait + random.uniform(0, 1))
            continue
        if 500 <= r.status_code < 600:
            time.sleep(min(60, 2 ** attempt) + random.uniform(0, 1))
            continue
        r.raise_for_status()
        return r.json()
    raise RuntimeError("exhausted retries")
end = datetime.now(timezone.utc)
start = end - timedelta(hours=24)
resp = get_with_retry(
    f"{API}/telemetry/aggregate",
    params={
        "device_id": "dev_42",
        "metric": "power_kw",
        "from": start.isoformat(),
        "to": end.isoformat(),
        "interval": "15m",
        "fn": "avg",
    },
)
for point in resp["data"]:
    print(point["ts"], point["value"])
def iter_devices():
    cursor = None
    while True:
        params = {"limit": 200}
        if cursor:
            params["cursor"] = cursor
        page = get_with_retry(f"{API}/devices", params=params)
        for d in page["data"]:
            yield d
        pg = page["meta"]["pagination"]
        if not pg["has_more"]:
            break
        cursor = pg["next"]
for device in iter_devices():
    print(device["id"], device["name"], device["status"])
""".replace("HOST", gw.url)
    exec(compile(source, "seed_002", "exec"), {"print": lambda *a: printed.append(a)})
    buckets = [p for p in printed if len(p) == 2]
    assert 6 <= len(buckets) <= 7 and all(isinstance(v, float) for _, v in buckets)
    assert ("dev_42", "Press line 4", "provisioning") in printed
