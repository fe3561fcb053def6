"""`/reports` (seed 002): on-demand report runs, answered 202 and generated in the background.

`POST` queues a run (`type` energy_daily, alarm_log or telemetry_daily; `from`
and `to`, at most 366 days; optionally `device_id` or `site_id`, and for
energy_daily a `metric`) and draws from the key's report bucket instead of
its write bucket. `GET /reports/{id}` answers its status (queued, running,
ready, failed, expired) and, once ready, a signed download URL. Running needs
`reports.write`; reading runs needs `reporting.read`. `edge.reports` says
what each CSV holds.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, QueryParameter
from litestar.response import Stream

from edge.runtime import Runtime
from edge.store import Job
from web.api import job_links, params, resources, series
from web.api.dialect import Dialect
from web.api.errors import ApiError

READ, WRITE = "reporting.read", "reports.write"
Status = Literal["queued", "running", "ready", "failed", "expired"]


class _NewReport(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    type: Literal["energy_daily", "alarm_log", "telemetry_daily"]
    start: datetime | None = msgspec.field(default=None, name="from")
    end: datetime | None = msgspec.field(default=None, name="to")
    from_utc: datetime | None = None
    to_utc: datetime | None = None
    device_id: str | None = None
    site_id: str | None = None
    metric: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None


def parse(body: dict[str, Any], kind: type[msgspec.Struct]) -> Any:
    """A body as the struct `kind`; 422 naming what is wrong."""
    try:
        return msgspec.convert(body, kind)
    except msgspec.ValidationError as error:
        raise ApiError(422, str(error).replace("`", ""), {"field": "body"}) from None


def window(start: datetime | None, end: datetime | None) -> tuple[int, int]:
    """A job's [from, to): both required, at most 366 days apart; else 400."""
    return series.window(start, end, series.AGGREGATE_WINDOW_MS, "ask for it in parts")


def times(job: Job) -> dict[str, Any]:
    """What reports and exports share: their window, who asked, and their times."""
    return {
        "from": resources.iso(job.start_ms),
        "to": resources.iso(job.end_ms),
        "requested_by": job.requested_by,
        "error": job.error,
        "size_bytes": job.size_bytes,
        "created_at": resources.iso(job.created_at),
        "started_at": resources.iso(job.started_at),
        "completed_at": resources.iso(job.completed_at),
        "expected_completion_at": resources.iso(job.params.get("expected_at")),
        "expires_at": resources.iso(job.expires_at),
        "updated_at": resources.iso(job.updated_at),
    }


def _out(request: Request, dialect: Dialect, runtime: Runtime, job: Job) -> dict[str, Any]:
    return {
        "id": job.id,
        "type": job.type,
        "status": job.status,
        "device_id": job.scope_id if job.scope_type == "DEVICE" else None,
        "site_id": job.scope_id if job.scope_type == "SITE" else None,
        "metric": job.params.get("metric"),
        "row_count": job.counts.get("row_count"),
        **times(job),
        **job_links.link(request, dialect, runtime, job),
    }


def _scope(new: _NewReport) -> tuple[str | None, str | None]:
    """(DEVICE, id), (SITE, id) or neither: the whole boundary."""
    if new.device_id and new.site_id:
        raise ApiError(422, "Give device_id or site_id, not both.", {"field": "site_id"})
    if new.device_id:
        return "DEVICE", new.device_id
    return ("SITE", new.site_id) if new.site_id else (None, None)


class ReportsController(Controller):
    """The caller's report runs and their files."""

    path = "/reports"
    tags = ["reports"]

    @post("/", opt={"scope": WRITE, "report": True}, status_code=202)
    async def create_report(
        self, request: Request, runtime: NamedDependency[Runtime], dialect: NamedDependency[Dialect]
    ) -> dict[str, Any]:
        """Queue a report run; answers its id, status and expected completion time (202)."""
        new = parse(params.json_body(dialect, await request.body()), _NewReport)
        span = window(new.start or new.from_utc, new.end or new.to_utc)
        scope, caller = _scope(new), params.caller(request)
        made = await asyncio.to_thread(
            runtime.store.create_job, caller.boundary, caller.key.id, "report", new.type, scope,
            span, {"metric": new.metric} if new.metric else {},
        )  # fmt: skip
        return dialect.one(request, _out(request, dialect, runtime, made))

    @get("/", opt={"scope": READ})
    async def list_reports(
        self,
        request: Request,
        runtime: NamedDependency[Runtime],
        dialect: NamedDependency[Dialect],
        status: FromQuery[Status | None] = None,
        updated_since: FromQuery[datetime | None] = None,
        updated_since_camel: Annotated[datetime | None, QueryParameter(name="updatedSince")] = None,
        limit: params.PageSize = None,
        page_size: params.CamelSize = None,
        cursor: FromQuery[str | None] = None,
    ) -> dict[str, Any]:
        """Recent runs, newest first; with updated_since, in (updated_at, id) order."""
        size = params.page_size(dialect, limit, page_size)
        since = resources.epoch_ms(updated_since or updated_since_camel, "updated_since")
        page = await asyncio.to_thread(runtime.store.job_page, params.caller(request).boundary,
                                       "report", status, since, cursor, size)  # fmt: skip
        items = [_out(request, dialect, runtime, j) for j in page.items]
        return dialect.page(request, items, page.next_cursor, size)

    @get("/{report_id:str}", opt={"scope": READ})
    async def get_report(
        self,
        request: Request,
        runtime: NamedDependency[Runtime],
        dialect: NamedDependency[Dialect],
        report_id: FromPath[str],
    ) -> dict[str, Any]:
        """One run: its status, and once ready a fresh signed download URL."""
        job = await asyncio.to_thread(
            runtime.store.job, params.caller(request).boundary, "report", report_id
        )
        return dialect.one(request, _out(request, dialect, runtime, job))

    @get("/{report_id:str}/download", opt={"public": True}, media_type="text/csv")
    async def download_report(
        self, request: Request, runtime: NamedDependency[Runtime], report_id: FromPath[str]
    ) -> Stream:
        """The report's CSV, for a signed, unexpired link; 403 otherwise."""
        return await job_links.download(request, runtime, "report", report_id)
