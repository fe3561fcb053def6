"""What every telemetry read shares: window and interval rules, their query parameters, bodies.

Windows: `from` inclusive, `to` exclusive (`fromUtc`/`toUtc` accepted); at most
31 days of raw readings and 366 days of aggregates per call, else 400. Used by
/telemetry, /readings and the CSV export, so the rules cannot drift apart.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Final

from litestar.params import QueryParameter

from edge.models import Bucket
from web.api import resources
from web.api.errors import ApiError

RAW_WINDOW_MS: Final = 31 * 86_400_000
AGGREGATE_WINDOW_MS: Final = 366 * 86_400_000
# An aggregate answer of more buckets than this is a mistake (1 s buckets over a year).
MAX_BUCKETS: Final = 100_000
INTERVAL: Final = re.compile(r"^(\d+)([smhd]?)$")
UNIT_S: Final = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86_400}

From = Annotated[datetime | None, QueryParameter(name="from")]
FromUtc = Annotated[datetime | None, QueryParameter(name="fromUtc")]
To = Annotated[datetime | None, QueryParameter(name="to")]
ToUtc = Annotated[datetime | None, QueryParameter(name="toUtc")]
DeviceId = Annotated[str | None, QueryParameter(name="deviceId")]


def window(
    start: datetime | None, end: datetime | None, longest_ms: int, use: str
) -> tuple[int, int]:
    """[from, to) in epoch ms; 400 if either is missing, inverted or further apart than allowed."""
    if start is None or end is None:
        raise ApiError(400, "from and to are required.", {"params": ["from", "to"]})
    start_ms = resources.epoch_ms(start, "from")
    end_ms = resources.epoch_ms(end, "to")
    assert start_ms is not None and end_ms is not None
    if end_ms <= start_ms:
        raise ApiError(400, "to must be after from.", {"params": ["from", "to"]})
    if end_ms - start_ms > longest_ms:
        days = longest_ms // 86_400_000
        raise ApiError(400, f"The window is longer than {days} days; {use}.",
                       {"max_days": days})  # fmt: skip
    return start_ms, end_ms


def interval_s(text: str) -> int:
    """`30s`, `15m`, `1h`, `1d` (or plain seconds) in seconds; 400 otherwise."""
    match = INTERVAL.match(text.strip())
    if not match or int(match[1]) == 0:
        raise ApiError(400, "interval must look like 30s, 15m, 1h or 1d.", {"param": "interval"})
    return int(match[1]) * UNIT_S[match[2]]


def bucket_step_s(text: str, span: tuple[int, int]) -> int:
    """The interval in seconds, refused when it would cut the window into too many buckets."""
    step = interval_s(text)
    if (span[1] - span[0]) // (step * 1000) > MAX_BUCKETS:
        raise ApiError(400, f"More than {MAX_BUCKETS} intervals; use a longer interval.",
                       {"param": "interval"})  # fmt: skip
    return step


def required(value: str | None, name: str) -> str:
    """The value, or 400 naming the missing parameter."""
    if not value:
        raise ApiError(400, f"{name} is required.", {"param": name})
    return value


def reading_out(device_id: str, metric: str, r: Any) -> dict[str, Any]:
    """A stored reading as the API shows it."""
    return {
        "device_id": device_id,
        "metric": metric,
        "ts": resources.iso(r.ts_ms),
        "value": r.value,
        "quality": r.quality.name.lower(),
        "correction": r.correction,
    }


def bucket_out(b: Bucket) -> dict[str, Any]:
    """An aggregate interval as the API shows it: its start, value and sample count."""
    return {"ts": resources.iso(b.start_ms), "value": b.value, "count": b.count}
