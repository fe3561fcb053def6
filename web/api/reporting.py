"""`/reporting/*` of seed 000: figures for dashboards and BI, computed from the store within
the caller's boundary.

Windows (`from`/`fromUtc` inclusive, `to`/`toUtc` exclusive) are at most 366 days; with
neither bound, service performance covers the last 366 days and daily telemetry the last
31. Daily telemetry is a bare list (as the seed shows; `{data, meta}` under /v1), one
item per device and UTC day: `samples` counts its good readings, and each metric's
average appears as `average_<metric>` (`averageTemperature` for a metric `temperature`).
"""

from __future__ import annotations

import asyncio
from typing import Any, Final

import msgspec
from litestar import Controller, Request, get
from litestar.di import NamedDependency
from litestar.params import FromQuery

from edge.maintenance import TelemetryDay
from edge.models import now_ms
from edge.runtime import Runtime
from web.api import params, resources
from web.api.dialect import Dialect
from web.api.records import WINDOW, Window
from web.api.series import DeviceId

READ: Final = {"scope": "reporting.read"}
DAY_MS: Final = 86_400_000
WINDOW_MS: Final = 366 * DAY_MS
DAILY_DEFAULT_MS: Final = 31 * DAY_MS


def _window(window: Window, default_ms: int) -> tuple[int, int]:
    """The asked window (366 days at most), else the `default_ms` up to now."""
    start_ms, end_ms = window.span(WINDOW_MS)
    if start_ms is None or end_ms is None:
        now = now_ms()
        return now - default_ms, now
    return start_ms, end_ms


def _day(d: TelemetryDay) -> dict[str, Any]:
    averages = {f"average_{metric}": value for metric, value in d.averages.items()}
    return {"device_id": d.device_id, "date": resources.iso(d.day_ms), "samples": d.samples,
            **averages}  # fmt: skip


class ReportingController(Controller):
    """Asset, service and telemetry figures."""

    path = "/reporting"
    tags = ["reporting"]
    dependencies = WINDOW

    @get("/assets-summary", opt=READ)
    async def assets_summary(
        self, request: Request, runtime: NamedDependency[Runtime],
        dialect: NamedDependency[Dialect],
    ) -> dict[str, Any]:  # fmt: skip
        """Asset counts (active, with devices, overdue for service) and maintenance cost."""
        found = await asyncio.to_thread(runtime.store.assets_summary,
                                        params.caller(request).boundary)  # fmt: skip
        return dialect.one(request, msgspec.to_builtins(found))

    @get("/service-performance", opt=READ)
    async def service_performance(
        self,
        request: Request,
        runtime: NamedDependency[Runtime],
        dialect: NamedDependency[Dialect],
        window: NamedDependency[Window],
    ) -> dict[str, Any]:
        """Visits started in the window: all, completed, planned or open, and their costs."""
        span = _window(window, WINDOW_MS)
        found = await asyncio.to_thread(runtime.store.service_performance,
                                        params.caller(request).boundary, *span)  # fmt: skip
        return dialect.one(request, msgspec.to_builtins(found))

    @get("/telemetry-daily", opt=READ)
    async def telemetry_daily(
        self,
        request: Request,
        runtime: NamedDependency[Runtime],
        dialect: NamedDependency[Dialect],
        window: NamedDependency[Window],
        device_id: FromQuery[str | None] = None,
        device_id_camel: DeviceId = None,
    ) -> Any:
        """Per device and UTC day: good readings and each metric's average."""
        span = _window(window, DAILY_DEFAULT_MS)
        days = await asyncio.to_thread(runtime.store.telemetry_daily,
                                       params.caller(request).boundary, *span,
                                       device_id or device_id_camel)  # fmt: skip
        return dialect.one(request, [_day(d) for d in days])  # type: ignore[arg-type]
