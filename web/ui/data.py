"""What several UI pages read: devices with their status, a device's latest values, the sync
agent's state and the disk. Plain functions over the runtime, run in a worker thread."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from typing import Any

from edge.models import Device, Point, StoredReading, now_ms
from edge.runtime import Runtime

STATUSES = ("online", "offline", "provisioning")


@dataclass(frozen=True, slots=True)
class Value:
    """A point with its newest reading, as a row of a values table."""

    point: Point
    reading: StoredReading | None

    @property
    def quality(self) -> str:
        return "none" if self.reading is None else self.reading.quality.name.lower()

    @property
    def writable(self) -> bool:
        return bool(self.point.config.get("writable"))


def devices(runtime: Runtime) -> list[tuple[Device, str]]:
    """Every live device of the gateway's organization with its status, by name."""
    found = runtime.store.devices(runtime.store.organization.id)
    return [(d, runtime.device_status(d)) for d in found]


def by_status(rows: list[tuple[Device, str]]) -> dict[str, int]:
    """How many devices are online, offline, provisioning."""
    counts = dict.fromkeys(STATUSES, 0)
    for _, status in rows:
        counts[status] = counts.get(status, 0) + 1
    return counts


def sites(runtime: Runtime, rows: list[tuple[Device, str]]) -> list[dict[str, Any]]:
    """The org's sites (first 100) with how many of their devices are online, of how many."""
    found = runtime.store.grouping_page("sites", runtime.store.organization.id, limit=100).items
    out = []
    for site in found:
        here = [s for d, s in rows if d.site_id == site.id]
        out.append(
            {
                "id": site.id,
                "name": site.name,
                "devices": len(here),
                "online": here.count("online"),
                "offline": here.count("offline"),
            }
        )
    return out


def values(runtime: Runtime, points: list[Point]) -> list[Value]:
    """Each point with its newest reading."""
    latest = runtime.store.latest(runtime.store.organization.id, [p.id for p in points])
    return [Value(p, latest.get(p.id)) for p in points]


def sync(runtime: Runtime) -> dict[str, Any] | None:
    """The sync agent's state (times in epoch ms), or None when it does not run."""
    source = runtime.status_sources.get("sync")
    return source() if source is not None else None


def disk(runtime: Runtime) -> dict[str, Any]:
    """The database's size and the data directory's filesystem use."""
    stats = runtime.store.stats()
    usage = shutil.disk_usage(runtime.settings.data_dir)
    return {
        "database_bytes": stats.file_bytes + stats.wal_bytes,
        "total_bytes": usage.total,
        "free_bytes": usage.free,
        "used_pct": round(100 * (usage.total - usage.free) / usage.total, 1) if usage.total else 0,
        "disk_full": runtime.store.disk_full,
        "queued_readings": stats.queued_readings,
    }


def now() -> int:
    """Wall-clock ms, for "ago" columns."""
    return now_ms()
