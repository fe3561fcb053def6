"""What the report, export and restart tests share: a gateway with short file lives, devices
with ingested readings, and waiting for a job to settle."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from edge import settings as settings_mod
from edge.settings import Settings

ALL = ("devices.read", "devices.write", "telemetry.read", "telemetry.write", "reports.write",
       "reporting.read", "exports.write", "incidents.read", "events.write")  # fmt: skip


def job_settings(tmp_path: Path, **jobs: Any) -> Settings:
    """Settings whose job runner and webhook dispatcher poll fast and whose files live
    `keep_s` (4 s)."""
    return settings_mod.load(
        None, {}, data_dir=str(tmp_path / "jobs-data"), http={"host": "127.0.0.1", "port": 0},
        jobs={"keep_s": 4, "poll_s": 0.1, **jobs}, webhooks={"poll_s": 0.05},
    )  # fmt: skip


def keyed(gw) -> Any:
    """The gateway with `key(*scopes, groups=...)` making API keys, as the `api` fixture has."""
    store = gw.runtime.store

    def key(*scopes: str, groups: tuple = (), customers: tuple = ()) -> dict[str, str]:
        _, secret = store.create_api_key(store.organization.id, "test", list(scopes),
                                         groups=groups, customers=customers)  # fmt: skip
        return {"Authorization": f"Bearer {secret}"}

    gw.key = key
    return gw


def device(client, headers, name: str, **extra: Any) -> str:
    """A new http device's id."""
    made = client.post("/v1/devices", json={"name": name, "type": "http", **extra},
                       headers=headers)  # fmt: skip
    assert made.status_code == 201, made.text
    return made.json()["data"]["id"]


def ingest(client, headers, device_id: str, metric: str, points: list[tuple[str, float]]) -> None:
    """Readings of one metric: (ISO time, value) pairs."""
    readings = [{"device_id": device_id, "metric": metric, "ts": ts, "value": v}
                for ts, v in points]  # fmt: skip
    answer = client.post("/v1/telemetry/ingest", json={"readings": readings}, headers=headers)
    assert answer.status_code == 200, answer.text


def settle(client, headers, url: str, done: set[str], timeout: float = 20.0) -> dict:
    """GET `url` until its status is one of `done`; the object (snake or camel case)."""
    deadline = time.monotonic() + timeout
    while True:
        answer = client.get(url, headers=headers)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        found = body["data"] if url.startswith("/v1/") else body
        if found["status"] in done:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{url} stayed {found['status']}")
        time.sleep(0.1)
