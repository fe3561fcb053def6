"""The sync agent draining a backlog: 1M buffered readings pushed to a loopback upstream.

Both gateways run as `edge run` processes; the downstream's store is filled
before it starts, so the figure is the agent's alone: readings/s from start to the
last acknowledgement, request bytes per reading (gzip JSON), and the downstream's
peak RSS (VmHWM).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Final

import httpx

from tests.bench._common import (
    QUICK,
    Result,
    Sizes,
    add_points,
    at_least,
    at_most,
    open_store,
    series,
    start_gateway,
)

DEVICES: Final = 20
POINTS_PER_DEVICE: Final = 25
RATE_TARGET: Final = 50_000
BYTES_TARGET: Final = 12
RSS_TARGET_MB: Final = 150


def _fill(directory: str, readings: int) -> None:
    with open_store(directory) as store:
        points = [pid for d in range(DEVICES)
                  for pid in add_points(store, POINTS_PER_DEVICE, f"meter {d}")]  # fmt: skip
        seconds = readings // len(points)
        for first in range(0, seconds, 200):
            store.append_readings(series(points, first, min(200, seconds - first)))


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _upstream_count(directory: str) -> int:
    """Readings the upstream stored (a duplicate would be an extra row)."""
    with open_store(directory) as store:
        return store.backlog()[0]


def run(sizes: Sizes) -> list[Result]:
    """Push readings/s, bytes per reading and peak RSS while draining the backlog."""
    total = 100_000 if sizes == QUICK else 1_000_000
    with tempfile.TemporaryDirectory() as up_dir, tempfile.TemporaryDirectory() as down_dir:
        _fill(down_dir, total)
        upstream, up_url, up_key = start_gateway(up_dir)
        try:
            began = time.perf_counter()
            down, down_url, down_key = start_gateway(
                down_dir,
                {"EDGE_SYNC_UPSTREAM_URL": f"{up_url}/v1", "EDGE_SYNC_API_KEY": up_key,
                 "EDGE_SYNC_IDLE_S": "0.05"},
            )  # fmt: skip
            try:
                headers = {"Authorization": f"Bearer {down_key}"}
                first_ack: tuple[float, int] | None = None
                while True:
                    status = httpx.get(f"{down_url}/v1/admin/sync", headers=headers).json()
                    status = status["data"]
                    if first_ack is None and status["readings_sent"]:
                        first_ack = (time.perf_counter(), status["readings_sent"])
                    if status["readings_sent"] >= total:
                        break
                    if time.perf_counter() - began > 600:
                        raise RuntimeError(f"the backlog did not drain: {status}")
                    time.sleep(0.1)
                seconds = time.perf_counter() - began
                assert first_ack is not None
                steady = (total - first_ack[1]) / (time.perf_counter() - first_ack[0])
                rss = _peak_rss_mb(down.pid)
            finally:
                down.terminate()
                down.wait(30)
        finally:
            upstream.terminate()
            upstream.wait(30)
        received = _upstream_count(up_dir)
    if received != total:
        raise RuntimeError(f"the upstream holds {received} readings, not {total}")
    label = f"sync push of {total:,} buffered readings"
    return [
        at_least(f"{label}, start to last ack", total / seconds, "readings/s", RATE_TARGET),
        Result(f"{label}, first to last ack", steady, "readings/s"),
        at_most(f"{label}, request bytes", status["bytes_sent"] / total, "B/reading",
                BYTES_TARGET),
        at_most(f"{label}, downstream peak RSS", rss, "MB", RSS_TARGET_MB),
    ]  # fmt: skip
