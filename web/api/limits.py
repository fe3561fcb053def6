"""Per-key rate limits: leaky buckets with seed 002's buckets, burst sizes and headers."""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import Final

from edge.settings import ApiSettings

WRITE_METHODS: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True, slots=True)
class Bucket:
    """A bucket's name, sustained rate (`per_min` requests per `window_s`) and burst size."""

    name: str
    per_min: int
    burst: int
    # Report runs are counted per hour (seed 002); every other bucket per minute.
    window_s: float = 60.0


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether one request fits, and the headers that say how much room is left."""

    allowed: bool
    headers: dict[str, str]
    retry_after_s: int


class RateLimiter:
    """Leaky buckets per (key, bucket): a burst is absorbed, sustained excess refused."""

    def __init__(self, settings: ApiSettings) -> None:
        self.read = Bucket("read", settings.read_per_min, settings.read_burst)
        self.write = Bucket("write", settings.write_per_min, settings.write_burst)
        self.ingest = Bucket("ingest", settings.ingest_per_min, settings.ingest_burst)
        self.report = Bucket("report", settings.report_per_hour, settings.report_burst, 3600.0)
        self._levels: dict[tuple[str, str], tuple[float, float]] = {}
        self._lock = threading.Lock()

    def bucket_for(self, method: str, ingest: bool, report: bool = False) -> Bucket:
        """The bucket a request draws from."""
        if ingest:
            return self.ingest
        if report:
            return self.report
        return self.write if method in WRITE_METHODS else self.read

    def take(self, key_id: str, bucket: Bucket, now: float | None = None) -> Verdict:
        """Count one request against the key's bucket."""
        now = time.time() if now is None else now
        rate = bucket.per_min / bucket.window_s
        with self._lock:
            level, at = self._levels.get((key_id, bucket.name), (0.0, now))
            level = max(0.0, level - (now - at) * rate)
            allowed = level + 1 <= bucket.burst
            if allowed:
                level += 1
            self._levels[key_id, bucket.name] = (level, now)
        retry = 0 if allowed else max(1, math.ceil((level + 1 - bucket.burst) / rate))
        headers = {
            "X-RateLimit-Limit": str(bucket.per_min),
            "X-RateLimit-Remaining": str(max(0, math.floor(bucket.burst - level))),
            "X-RateLimit-Reset": str(math.ceil(now + level / rate)),
        }
        if not allowed:
            headers["Retry-After"] = str(retry)
        return Verdict(allowed, headers, retry)
