"""`/admin`: the sync agent's state and the quarantine of readings the upstream refused."""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery

from edge.models import QuarantinedReading
from edge.runtime import Runtime
from web.api import params, resources
from web.api.dialect import Dialect
from web.api.errors import ApiError

_TIMES = ("oldest_unsynced_ms", "last_success_ms", "last_error_ms", "offline_since_ms",
          "last_pull_ms")  # fmt: skip


def _quarantined(q: QuarantinedReading) -> dict[str, Any]:
    return {
        "id": q.id,
        "seq": q.seq,
        "device_id": q.device_id,
        "metric": q.metric,
        "ts": resources.iso(q.ts_ms),
        "value": q.value,
        "quality": q.quality.name.lower(),
        "correction": q.correction,
        "status": q.status,
        "error": q.error,
        "quarantined_at": resources.iso(q.created_at),
        "attempts": q.attempts,
        "retry_pending": q.retry,
    }


class SyncStatusController(Controller):
    """The sync agent's state: backlog, last success, last error, bytes sent."""

    path = "/admin/sync"
    tags = ["admin"]

    @get("/", opt={"scope": "admin"})
    async def sync_status(
        self, request: Request, runtime: NamedDependency[Runtime], dialect: NamedDependency[Dialect]
    ) -> dict[str, Any]:
        """The agent's state; times as ISO-8601."""
        source = runtime.status_sources.get("sync")
        if source is None:
            raise ApiError(503, "The sync agent is not running.")
        status = await asyncio.to_thread(source)
        for name in _TIMES:
            status[name.removesuffix("_ms") + "_at"] = resources.iso(status.pop(name))
        return dialect.one(request, status)


class QuarantineController(Controller):
    """Readings the upstream refused: inspect, retry, discard."""

    path = "/admin/quarantine"
    tags = ["admin"]

    @get("/", opt={"scope": "admin"})
    async def list_quarantine(
        self,
        request: Request,
        runtime: NamedDependency[Runtime],
        dialect: NamedDependency[Dialect],
        limit: params.PageSize = None,
        page_size: params.CamelSize = None,
        cursor: FromQuery[str | None] = None,
    ) -> dict[str, Any]:
        """Quarantined readings with the upstream's answer, oldest first."""
        size = params.page_size(dialect, limit, page_size)
        page = await asyncio.to_thread(
            runtime.store.quarantine_page, params.caller(request).org_id, cursor, size
        )
        items = [_quarantined(q) for q in page.items]
        return dialect.page(request, items, page.next_cursor, size)

    @get("/{item_id:str}", opt={"scope": "admin"})
    async def get_quarantined(
        self,
        request: Request,
        runtime: NamedDependency[Runtime],
        dialect: NamedDependency[Dialect],
        item_id: FromPath[str],
    ) -> dict[str, Any]:
        """One quarantined reading."""
        found = await asyncio.to_thread(
            runtime.store.quarantined, params.caller(request).org_id, item_id
        )
        return dialect.one(request, _quarantined(found))

    @post("/{item_id:str}/retry", opt={"scope": "admin"}, status_code=202)
    async def retry_quarantined(
        self,
        request: Request,
        runtime: NamedDependency[Runtime],
        dialect: NamedDependency[Dialect],
        item_id: FromPath[str],
    ) -> dict[str, Any]:
        """Send it again on the agent's next pass; it leaves quarantine once accepted."""
        org = params.caller(request).org_id
        await asyncio.to_thread(runtime.store.quarantine_retry, org, item_id)
        found = await asyncio.to_thread(runtime.store.quarantined, org, item_id)
        return dialect.one(request, _quarantined(found))

    @post("/{item_id:str}/discard", opt={"scope": "admin"}, status_code=200)
    async def discard_quarantined(
        self,
        request: Request,
        runtime: NamedDependency[Runtime],
        dialect: NamedDependency[Dialect],
        item_id: FromPath[str],
    ) -> Response[dict[str, Any]]:
        """Drop it for good; an event records who did."""
        caller = params.caller(request)
        gone = await asyncio.to_thread(runtime.store.quarantine_discard, caller.org_id, item_id)
        await asyncio.to_thread(
            runtime.store.record_event, caller.org_id, "sync.quarantine_discarded", "info",
            f"A quarantined reading of {gone.device_id} {gone.metric} was discarded.",
            gone.device_id, {"actor": caller.key.id, "seq": gone.seq},
        )  # fmt: skip
        return Response(dialect.one(request, _quarantined(gone)))
