"""The overview: gateway health, devices by status, open alarms, pinned values, sync, disk.

The page polls its own fragment every 5 s, so values refresh without a reload.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from litestar import Controller, Request, get
from litestar.di import NamedDependency

from edge import __version__
from edge.runtime import Runtime
from web.ui import data, pages


def context(runtime: Runtime) -> dict[str, Any]:
    """Everything the overview shows, read once."""
    store = runtime.store
    org = store.organization.id
    rows = data.devices(runtime)
    names = {d.id: d.name for d, _ in rows}
    pinned = set(store.pinned_points(org))
    points = [p for p in store.points(org) if p.id in pinned]
    active = store.alarm_page(org, "active", limit=20).items
    acked = store.alarm_page(org, "acknowledged", limit=20).items
    return {
        "organization": store.organization.name,
        "gateway_id": store.gateway_id,
        "version": __version__,
        "uptime_s": int(time.time() - runtime.started_at_ms / 1000),
        "counts": data.by_status(rows),
        "sites": data.sites(runtime, rows),
        "offline": [(d, s) for d, s in rows if s == "offline"][:10],
        "alarms": sorted([*active, *acked], key=lambda a: -a.raised_at),
        "names": names,
        "pinned": data.values(runtime, points),
        "sync": data.sync(runtime),
        "disk": data.disk(runtime),
        "now": data.now(),
    }


class OverviewController(Controller):
    """/: the gateway at a glance."""

    @get("/")
    async def overview(self, request: Request, runtime: NamedDependency[Runtime]) -> Any:
        """The whole page, or its refreshed fragment."""
        return pages.page(request, "overview", await asyncio.to_thread(context, runtime))
