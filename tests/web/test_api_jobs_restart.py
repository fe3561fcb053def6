"""Jobs live in the store: one queued or running when the gateway stops completes after it
starts again, a half-written file is not served, and a job that cannot run says why."""

from __future__ import annotations

import io
import time
import zipfile
from pathlib import Path

import httpx

from edge.store import Store
from tests.web.jobs_helpers import ALL, device, ingest, job_settings, keyed, settle
from tests.web.test_api_export import serving_once

FLOW = [(f"2026-01-{d:02d}T12:00:00Z", d * 0.5) for d in range(1, 11)]
WINDOW = {"from": "2026-01-01T00:00:00Z", "to": "2026-01-11T00:00:00Z"}


def test_jobs_queued_or_running_at_a_stop_complete_after_the_restart(gateway_factory, tmp_path):
    # The first gateway's runner looks for jobs once, then not for a minute: what is asked
    # meanwhile is still queued when it stops.
    slow = job_settings(tmp_path, poll_s=60)
    with serving_once(slow) as (client, runtime):
        store = runtime.store
        _, secret = store.create_api_key(store.organization.id, "t", list(ALL))
        headers = {"Authorization": f"Bearer {secret}"}
        pump = device(client, headers, "Pump")
        doomed = device(client, headers, "Removed before its export runs")
        ingest(client, headers, pump, "flow", FLOW)
        time.sleep(1.0)  # past the runner's first look
        made = client.post("/api/v1/exports", headers=headers,
                           json={"scopeType": "DEVICE", "scopeId": pump, **WINDOW})  # fmt: skip
        export = made.json()
        report = client.post("/v1/reports", headers=headers, json={
            "type": "telemetry_daily", "device_id": pump, **WINDOW}).json()["data"]  # fmt: skip
        failing = client.post("/v1/exports", headers=headers, json={
            "scope_type": "DEVICE", "scope_id": doomed, **WINDOW}).json()["data"]  # fmt: skip
        assert client.delete(f"/v1/devices/{doomed}", headers=headers).status_code == 204
        still = client.get(f"/api/v1/exports/{export['id']}", headers=headers).json()
        assert still["status"] == "PENDING"

    # While it is down: the export was being written when the process died.
    store = Store.open(slow)
    claimed = store.claim_job()
    assert claimed is not None and claimed.id == export["id"]
    partial = Path(slow.data_dir) / "exports" / f"{export['id']}.zip.part"
    partial.parent.mkdir(parents=True, exist_ok=True)
    partial.write_bytes(b"PK half a zip")
    store.close()

    gw = keyed(gateway_factory(settings_=job_settings(tmp_path)))
    ready = settle(gw.client, headers, f"/api/v1/exports/{export['id']}", {"READY", "FAILED"})
    assert ready["status"] == "READY" and ready["readingCount"] == len(FLOW)
    got = httpx.get(ready["downloadUrl"])
    with zipfile.ZipFile(io.BytesIO(got.content)) as archive:
        lines = archive.read("readings.csv").decode().splitlines()
    assert len(lines) == len(FLOW) + 1 and lines[1].endswith(",0.5,good,false")
    assert not partial.exists()
    done = settle(gw.client, headers, f"/v1/reports/{report['id']}", {"ready", "failed"})
    assert done["status"] == "ready" and done["row_count"] == len(FLOW)
    failed = settle(gw.client, headers, f"/v1/exports/{failing['id']}", {"READY", "FAILED"})
    assert failed["status"] == "FAILED" and f"no device {doomed}" in failed["error"]
    assert failed["download_url"] is None
