"""What every benchmark shares: sizes, result rows, a store in a directory, points and readings."""

from __future__ import annotations

import contextlib
import math
import os
import random
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import httpx

from edge import settings as S
from edge.models import Device, Point, Reading
from edge.store import Store

# 2023-11-14T00:00:00Z: a fixed origin on a day boundary, so buckets line up with the data.
T0_MS: Final = 1_699_920_000_000
DAY_S: Final = 86_400

# Analog points read 230 V plus a little noise, to one decimal; cycled through per point.
_NOISE: Final = tuple(round(230.0 + random.Random(42).gauss(0.0, 0.5), 1) for _ in range(4099))


@dataclass(frozen=True, slots=True)
class Sizes:
    """How much each benchmark writes and how often it repeats a query."""

    ingest_readings: int
    ack_samples: int
    disk_readings: int
    range_days: int
    range_neighbours: int
    page_calls: int
    aggregate_calls: int
    latest_points: int
    latest_calls: int


FULL: Final = Sizes(
    ingest_readings=1_000_000,
    ack_samples=500,
    disk_readings=10_000_000,
    range_days=31,
    range_neighbours=3,
    page_calls=200,
    aggregate_calls=3,
    latest_points=5_000,
    latest_calls=50,
)
QUICK: Final = Sizes(
    ingest_readings=100_000,
    ack_samples=100,
    disk_readings=500_000,
    range_days=3,
    range_neighbours=1,
    page_calls=50,
    aggregate_calls=1,
    latest_points=5_000,
    latest_calls=5,
)


@dataclass(frozen=True, slots=True)
class Result:
    """One row of the table; `ok` is None for a figure with no target."""

    measure: str
    value: float
    unit: str
    target: str = ""
    ok: bool | None = None


def at_least(measure: str, value: float, unit: str, floor: float) -> Result:
    """A result whose target is a lower bound."""
    return Result(measure, value, unit, f">= {_number(floor)}", value >= floor)


def at_most(measure: str, value: float, unit: str, ceiling: float) -> Result:
    """A result whose target is an upper bound."""
    return Result(measure, value, unit, f"<= {_number(ceiling)}", value <= ceiling)


@contextlib.contextmanager
def open_store(directory: str, **writer: int) -> Iterator[Store]:
    """A store in `directory` (writer settings overridden by `writer`), closed on exit."""
    store = Store.open(S.load(None, {}, data_dir=directory, writer=writer))
    try:
        yield store
    finally:
        store.close()


def database_bytes(directory: str) -> int:
    """Size of edge.db plus its WAL, if one is left."""
    path = Path(directory) / "edge.db"
    wal = path.with_name(path.name + "-wal")
    return path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)


def add_points(store: Store, count: int, name: str = "bench") -> list[int]:
    """A new device with `count` points in the store's organization; their ids."""
    org = store.organization.id
    device = store.create_device(Device(id="", org_id=org, name=name, type="http"))
    points = store.create_points(org, [Point(0, "", org, device.id, f"p{i}") for i in range(count)])
    return [p.id for p in points]


def _value(index: int, second: int) -> float:
    """Every fourth point is an energy counter (whole numbers); the rest read a voltage."""
    if index % 4 == 3:
        return float(second * (index % 7 + 1))
    return _NOISE[(second + 131 * index) % len(_NOISE)]


def series(point_ids: Sequence[int], first_s: int, seconds: int, step_s: int = 1) -> list[Reading]:
    """Readings of every point every `step_s` seconds in [first_s, first_s + seconds)."""
    return [
        Reading(pid, T0_MS + s * 1000, _value(i, s))
        for s in range(math.ceil(first_s / step_s) * step_s, first_s + seconds, step_s)
        for i, pid in enumerate(point_ids)
    ]


def quantile(samples: Sequence[float], q: float) -> float:
    """The nearest-rank `q` quantile (0 < q <= 1) of the samples."""
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def _number(value: float) -> str:
    if value >= 1000:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}" if value < 1 else f"{value:.2f}"


def table(results: Sequence[Result]) -> str:
    """The results as aligned plain-text columns."""
    header = ("measure", "value", "unit", "target", "ok?")
    rows = [
        (
            r.measure,
            _number(r.value),
            r.unit,
            r.target or "-",
            "-" if r.ok is None else ("yes" if r.ok else "NO"),
        )
        for r in results
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = []
    for row in [header, *rows]:
        cells = [
            cell.rjust(width) if i == 1 else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# Benchmarks measure throughput, not the rate limiter.
UNLIMITED: Final = {
    f"EDGE_API_{kind}_{what}": value
    for kind in ("READ", "WRITE", "INGEST")
    for what, value in (("PER_MIN", "1000000"), ("BURST", "100000"))
}


def start_gateway(
    directory: str, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[str], str, str]:
    """`edge run` in its own process on a free port with an admin key: (process, url, key)."""
    full = {
        **os.environ,
        "EDGE_DATA_DIR": directory,
        "EDGE_HTTP_HOST": "127.0.0.1",
        "EDGE_HTTP_PORT": str(free_port()),
        "EDGE_LOG_LEVEL": "WARNING",
        **UNLIMITED,
        **(env or {}),
    }
    made = subprocess.run(
        [sys.executable, "-m", "edge", "keys", "create", "--scopes", "admin"],
        env=full, capture_output=True, text=True, check=True,
    )  # fmt: skip
    key = made.stdout.splitlines()[-1]
    process = subprocess.Popen([sys.executable, "-m", "edge", "run"], env=full, text=True)
    url = f"http://127.0.0.1:{full['EDGE_HTTP_PORT']}"
    for _ in range(400):
        try:
            if httpx.get(f"{url}/readyz").status_code == 200:
                return process, url, key
        except httpx.TransportError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("the gateway did not start")
