"""SQL for the reporting figures (seed 000): asset counts and costs, service performance in
a window, and daily telemetry per device, all computed from the rows, within the owner's
boundary."""

from __future__ import annotations

from typing import Final

import apsw

from edge.maintenance import KINDS, AssetsSummary, ServicePerformance, TelemetryDay
from edge.models import Owner
from edge.store._catalog import device_visible, reach
from edge.store._readings import aggregate
from edge.store._service import visible

DAY_MS: Final = 86_400_000
_ASSETS: Final = visible(KINDS["assets"])
_VISITS: Final = visible(KINDS["service_visits"])


def assets_summary(conn: apsw.Connection, owner: Owner, now: int) -> AssetsSummary:
    """Live assets by state and on a live device; overdue: active with a next service date
    before `now`; the cost: the actual cost of the service visits of those assets."""
    counts = conn.execute(
        "SELECT count(*), total(r.active = 1), total(r.active = 0), "
        "total(r.device_id IN (SELECT d.id FROM devices AS d WHERE d.org_id = ?1 "
        "AND d.deleted_at IS NULL)), total(r.active = 1 AND r.at < ?4) "
        "FROM service_records AS r WHERE r.org_id = ?1 AND r.kind = 'assets' "
        f"AND r.deleted_at IS NULL AND {_ASSETS}",
        (*reach(owner), now),
    ).fetchone()
    cost = conn.execute(
        "SELECT total(json_extract(r.body, '$.actual_cost')) FROM service_records AS r "
        "WHERE r.org_id = ?1 AND r.kind = 'service_visits' AND r.deleted_at IS NULL "
        "AND r.asset_id IN (SELECT a.id FROM service_records AS a WHERE a.org_id = ?1 "
        f"AND a.kind = 'assets' AND a.deleted_at IS NULL) AND {_VISITS}",
        reach(owner),
    ).fetchone()[0]
    total, active, inactive, with_devices, overdue = counts
    return AssetsSummary(total, int(active), int(inactive), int(with_devices), int(overdue), cost)


def service_performance(
    conn: apsw.Connection, owner: Owner, start: int, end: int
) -> ServicePerformance:
    """Live service visits started in [start, end): all, completed, still planned or open,
    and the sums of their estimated and actual costs."""
    row = conn.execute(
        "SELECT count(*), total(r.state = 'completed'), total(r.state IN ('planned', 'open')), "
        "total(json_extract(r.body, '$.estimated_cost')), "
        "total(json_extract(r.body, '$.actual_cost')) FROM service_records AS r "
        "WHERE r.org_id = ?1 AND r.kind = 'service_visits' AND r.deleted_at IS NULL "
        f"AND r.at >= ?4 AND r.at < ?5 AND {_VISITS}",
        (*reach(owner), start, end),
    ).fetchone()
    total, completed, open_, estimated, actual = row
    return ServicePerformance(total, int(completed), int(open_), estimated, actual)


def telemetry_daily(
    conn: apsw.Connection, owner: Owner, start: int, end: int, device_id: str | None
) -> list[TelemetryDay]:
    """Per device and UTC day in [start, end): the good current readings and each metric's
    average, by device then day."""
    points = conn.execute(
        "SELECT p.id, p.device_id, p.key FROM points AS p "
        f"WHERE p.org_id = ?1 AND p.deleted_at IS NULL AND {device_visible('p.device_id')} "
        "AND (?4 IS NULL OR p.device_id = ?4) ORDER BY p.device_id, p.key",
        (*reach(owner), device_id),
    ).fetchall()
    days: dict[tuple[str, int], tuple[int, dict[str, float]]] = {}
    for point_id, device, metric in points:
        # Day buckets of one point at a time: each an indexed range in disk order, with the
        # corrections filter only where the window has corrections.
        for bucket in aggregate(conn, point_id, start, end, DAY_MS, "avg"):
            samples, averages = days.get((device, bucket.start_ms), (0, {}))
            averages[metric] = bucket.value
            days[(device, bucket.start_ms)] = (samples + bucket.count, averages)
    return [TelemetryDay(device, day, samples, averages)
            for (device, day), (samples, averages) in sorted(days.items())]  # fmt: skip
