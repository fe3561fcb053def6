"""The LAN UI's pages with 100 devices and a year of data: server time per page.

A store gets 100 devices of 3 points each with a reading every 15 minutes for
a year (FULL; 30 days in QUICK) up to now, 20 open alarms, 10 pinned points
and 20 finished reports and exports; then `edge run` serves it in its own
process and this process, signed in as a UI admin, fetches each page in
turn. Each figure is the 95th percentile of the time from request to last
byte over loopback, which bounds the server's time from above.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from typing import Final

import httpx

from edge.models import AlertRule, Boundary, Device, Point, Reading, now_ms
from tests.bench._common import QUICK, Result, Sizes, at_most, open_store, quantile, start_gateway

DEVICES: Final = 100
POINTS: Final = ("voltage", "current", "energy")
STEP_MS: Final = 900_000
BATCH: Final = 50_000
ALARMS: Final = 20
PINNED: Final = 10
JOBS: Final = 10
TARGET_MS: Final = 100.0
PASSWORD: Final = "benchmark passphrase"


def _load(directory: str, days: int) -> str:
    """Fill the store; returns the id of a device to open."""
    with open_store(directory, max_batch=BATCH) as store:
        org = store.organization.id
        point_ids: list[int] = []
        first_device = ""
        for n in range(DEVICES):
            device = store.create_device(
                Device(id="", org_id=org, name=f"Meter {n:03}", type="http", tags=[f"floor{n % 5}"])
            )
            first_device = first_device or device.id
            made = store.create_points(
                org, [Point(0, "", org, device.id, key, "V") for key in POINTS]
            )
            point_ids += [p.id for p in made]
            if n < ALARMS:
                rule = store.create_rule(
                    org,
                    AlertRule(
                        "",
                        org,
                        f"Meter {n:03} high",
                        "threshold",
                        device.id,
                        "voltage",
                        {"op": ">", "value": 250.0},
                        "warning",
                    ),
                )
                store.raise_alarm(rule, f"Meter {n:03} voltage high", 251.0, now_ms())
        for point_id in point_ids[:PINNED]:
            store.pin_point(org, point_id)
        _jobs(store, first_device)
        end = now_ms() // STEP_MS * STEP_MS
        start = end - days * 86_400_000
        batch: list[Reading] = []
        for ts in range(start, end, STEP_MS):
            batch += [Reading(pid, ts, 230.0 + (ts // STEP_MS + pid) % 7) for pid in point_ids]
            if len(batch) >= BATCH:
                store.append_readings(batch)
                batch = []
        store.append_readings(batch)
    return first_device


def _jobs(store, device_id: str) -> None:
    """The settings page's list: JOBS ready reports and as many ready exports (rows only: the
    benchmark times the page, not the runner)."""
    owner, window = Boundary(store.organization.id), (now_ms() - 86_400_000, now_ms())
    for _ in range(JOBS):
        store.create_job(owner, "bench", "report", "telemetry_daily", ("DEVICE", device_id),
                         window, {})  # fmt: skip
        store.create_job(owner, "bench", "export", "export", ("DEVICE", device_id), window,
                         {"includes": ["READINGS"]})  # fmt: skip
    while (job := store.claim_job()) is not None:
        store.finish_job(job.id, f"{job.kind}s/{job.id}.csv", 1000, {"row_count": 24}, 86_400_000)


def _sign_in(url: str, directory: str) -> httpx.Client:
    subprocess.run(
        [sys.executable, "-m", "edge", "users", "create", "bench", "--password-stdin"],
        input=PASSWORD + "\n",
        text=True,
        check=True,
        capture_output=True,
        env={**os.environ, "EDGE_DATA_DIR": directory},
    )
    client = httpx.Client(base_url=url, timeout=30)
    page = client.get("/login").text
    token = re.search(r'name="form_token" value="([^"]+)"', page).group(1)
    answer = client.post(
        "/login", data={"form_token": token, "username": "bench", "password": PASSWORD}
    )
    if answer.status_code != 303:
        raise AssertionError(f"sign-in failed: {answer.status_code}")
    return client


def _p95_ms(client: httpx.Client, path: str, calls: int, htmx: bool = False) -> float:
    headers = {"HX-Request": "true"} if htmx else {}
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        answer = client.get(path, headers=headers)
        times.append((time.perf_counter() - started) * 1000)
        if answer.status_code != 200:
            raise AssertionError(f"{path}: {answer.status_code}")
    return quantile(times, 0.95)


def run(sizes: Sizes) -> list[Result]:
    """Load, serve, then time each page."""
    days = 30 if sizes is QUICK else 365
    calls = 10 if sizes is QUICK else 40
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        device = _load(tmp, days)
        process, url, _ = start_gateway(tmp, {"EDGE_LOG_LEVEL": "ERROR"})
        try:
            client = _sign_in(url, tmp)
            pages = (
                ("overview", "/", False),
                ("overview, htmx refresh", "/", True),
                ("devices", "/devices", False),
                ("devices, filtered", "/devices?q=floor3", False),
                ("device, 24 h", f"/devices/{device}", False),
                ("device, live refresh", f"/devices/{device}", True),
                ("device, 1 y", f"/devices/{device}?range=1y", False),
                ("chart data, 1 y", f"/devices/{device}/series?point=voltage&range=1y", False),
                ("add a device", "/devices/new", False),
                ("alarms", "/alarms", False),
                ("rules", "/rules", False),
                ("sync", "/sync", False),
                ("settings", "/settings", False),
                ("settings, job list refresh", "/settings", True),
            )
            client.get("/")  # first request warms the process
            chart = client.get(f"/devices/{device}/series?point=voltage&range=1y").json()
            if sum(v is not None for v in chart["v"]) < days - 1:
                raise AssertionError("the chart does not cover the data loaded")
            for name, path, htmx in pages:
                took = _p95_ms(client, path, calls, htmx)
                results.append(
                    at_most(f"UI {name} ({days} d, {DEVICES} devices), p95", took, "ms", TARGET_MS)
                )
            client.close()
        finally:
            process.terminate()
            process.wait(30)
    return results
