"""The HTTP API under load from another process: ingest readings/s, and list latency at 200 req/s.

The gateway runs as `edge run` in its own process (its rate limits raised, since
this measures throughput, not the limiter); this process is the load generator.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from datetime import UTC, datetime, timedelta
from typing import Final

import httpx

from tests.bench._common import QUICK, Result, Sizes, at_least, quantile, start_gateway

BATCH: Final = 1_000
CONCURRENCY: Final = 8
LIST_RATE: Final = 200
INGEST_TARGET: Final = 100_000
DEVICES: Final = 50


def _batches(device_ids: list[str], count: int) -> list[bytes]:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    out = []
    for b in range(count):
        readings = [
            {"device_id": device_ids[i % len(device_ids)], "metric": f"m{i % 20}",
             "ts": (start + timedelta(seconds=b * 50 + i // 20)).isoformat(), "value": i * 0.5}
            for i in range(BATCH)
        ]  # fmt: skip
        out.append(httpx.Request("POST", "/", json={"readings": readings}).read())
    return out


async def _ingest(url: str, key: str, bodies: list[bytes], seconds: float) -> float:
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    sent = 0
    deadline = time.perf_counter() + seconds
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as client:

        async def worker(offset: int) -> None:
            nonlocal sent
            i = offset
            while time.perf_counter() < deadline:
                response = await client.post(
                    "/v1/telemetry/ingest", content=bodies[i % len(bodies)]
                )
                response.raise_for_status()
                sent += BATCH
                i += CONCURRENCY

        started = time.perf_counter()
        await asyncio.gather(*(worker(k) for k in range(CONCURRENCY)))
        return sent / (time.perf_counter() - started)


async def _list_latency(url: str, key: str, seconds: float) -> list[float]:
    headers = {"Authorization": f"Bearer {key}"}
    latencies: list[float] = []
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as client:

        async def one() -> None:
            began = time.perf_counter()
            response = await client.get("/v1/devices", params={"limit": 50})
            response.raise_for_status()
            latencies.append((time.perf_counter() - began) * 1000)

        tasks = []
        start = time.perf_counter()
        for n in range(int(LIST_RATE * seconds)):  # open loop: sends do not wait for answers
            await asyncio.sleep(max(0.0, start + n / LIST_RATE - time.perf_counter()))
            tasks.append(asyncio.create_task(one()))
        await asyncio.gather(*tasks)
    return latencies


def run(sizes: Sizes) -> list[Result]:
    """Ingest readings/s and GET /v1/devices latency against a gateway in another process."""
    seconds = 3.0 if sizes == QUICK else 10.0
    with tempfile.TemporaryDirectory() as directory:
        process, url, key = start_gateway(directory)
        try:
            headers = {"Authorization": f"Bearer {key}"}
            device_ids = [
                httpx.post(f"{url}/v1/devices", json={"name": f"d{i}", "type": "http"},
                           headers=headers).json()["data"]["id"]
                for i in range(DEVICES)
            ]  # fmt: skip
            bodies = _batches(device_ids, 40)
            asyncio.run(_ingest(url, key, bodies[:2], 1.0))  # warm-up: points get created
            rate = asyncio.run(_ingest(url, key, bodies, seconds))
            latencies = asyncio.run(_list_latency(url, key, seconds / 2))
        finally:
            process.terminate()
            process.wait(15)
    return [
        at_least(f"POST /v1/telemetry/ingest, {BATCH}-reading batches, {CONCURRENCY} clients",
                 rate, "readings/s", INGEST_TARGET),
        Result(f"GET /v1/devices at {LIST_RATE} req/s, p50", quantile(latencies, 0.5), "ms"),
        Result(f"GET /v1/devices at {LIST_RATE} req/s, p99", quantile(latencies, 0.99), "ms"),
    ]  # fmt: skip
