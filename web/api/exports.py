"""`/exports` (seed 001): a zip of a device's or a site's readings and annotations, made in the
background.

`POST` (`scopeType` DEVICE or SITE, `scopeId`, `from`, `to` at most 366 days
apart, `includes` READINGS and/or ANNOTATIONS) answers 201 PENDING; the job
then goes RUNNING and READY (with sizeBytes, readingCount, annotationCount,
completedAt, expiresAt and a signed downloadUrl), or FAILED with its error,
and EXPIRED once `[jobs] keep_s` has passed and its file is deleted.
Requesting needs `exports.write`; reading exports needs `telemetry.read`,
since their links hand out telemetry. `edge.exports` says what the zip holds.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any, Final, Literal

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, QueryParameter
from litestar.response import Stream

from edge.runtime import Runtime
from edge.store import Job
from web.api import job_links, params, resources
from web.api.dialect import Dialect
from web.api.reports import parse, times, window

READ, WRITE = "telemetry.read", "exports.write"
# Seed 001's statuses for the store's job states.
STATUSES: Final = {"queued": "PENDING", "running": "RUNNING", "ready": "READY",
                   "failed": "FAILED", "expired": "EXPIRED"}  # fmt: skip
Status = Literal["PENDING", "RUNNING", "READY", "FAILED", "EXPIRED"]
Include = Literal["READINGS", "ANNOTATIONS"]


class _NewExport(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    scope_type: Literal["DEVICE", "SITE"]
    scope_id: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    includes: Annotated[list[Include], msgspec.Meta(min_length=1)] = msgspec.field(
        default_factory=lambda: ["READINGS", "ANNOTATIONS"]
    )
    start: datetime | None = msgspec.field(default=None, name="from")
    end: datetime | None = msgspec.field(default=None, name="to")
    from_utc: datetime | None = None
    to_utc: datetime | None = None


def _out(request: Request, dialect: Dialect, runtime: Runtime, job: Job) -> dict[str, Any]:
    return {
        "id": job.id,
        "scope_type": job.scope_type,
        "scope_id": job.scope_id,
        "includes": job.params.get("includes", []),
        "status": STATUSES[job.status],
        "reading_count": job.counts.get("reading_count"),
        "annotation_count": job.counts.get("annotation_count"),
        **times(job),
        **job_links.link(request, dialect, runtime, job),
    }


class ExportsController(Controller):
    """The caller's exports and their files."""

    path = "/exports"
    tags = ["exports"]

    @post("/", opt={"scope": WRITE})
    async def create_export(
        self, request: Request, runtime: NamedDependency[Runtime], dialect: NamedDependency[Dialect]
    ) -> Response[dict[str, Any]]:
        """Queue an export of a device's or site's data; answers it PENDING (201)."""
        new = parse(params.json_body(dialect, await request.body()), _NewExport)
        span = window(new.start or new.from_utc, new.end or new.to_utc)
        caller = params.caller(request)
        made = await asyncio.to_thread(
            runtime.store.create_job, caller.boundary, caller.key.id, "export", "export",
            (new.scope_type, new.scope_id), span, {"includes": list(dict.fromkeys(new.includes))},
        )  # fmt: skip
        answer = dialect.one(request, _out(request, dialect, runtime, made))
        return Response(answer, status_code=201)

    @get("/", opt={"scope": READ})
    async def list_exports(
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
        """Recent exports, newest first; with updated_since, in (updated_at, id) order."""
        size = params.page_size(dialect, limit, page_size)
        since = resources.epoch_ms(updated_since or updated_since_camel, "updated_since")
        state = next((k for k, v in STATUSES.items() if v == status), None)
        page = await asyncio.to_thread(runtime.store.job_page, params.caller(request).boundary,
                                       "export", state, since, cursor, size)  # fmt: skip
        items = [_out(request, dialect, runtime, j) for j in page.items]
        return dialect.page(request, items, page.next_cursor, size)

    @get("/{export_id:str}", opt={"scope": READ})
    async def get_export(
        self,
        request: Request,
        runtime: NamedDependency[Runtime],
        dialect: NamedDependency[Dialect],
        export_id: FromPath[str],
    ) -> dict[str, Any]:
        """One export: its status, and once READY a fresh signed downloadUrl."""
        job = await asyncio.to_thread(
            runtime.store.job, params.caller(request).boundary, "export", export_id
        )
        return dialect.one(request, _out(request, dialect, runtime, job))

    @get("/{export_id:str}/download", opt={"public": True}, media_type="application/zip")
    async def download_export(
        self, request: Request, runtime: NamedDependency[Runtime], export_id: FromPath[str]
    ) -> Stream:
        """The export's zip, for a signed, unexpired link; 403 otherwise."""
        return await job_links.download(request, runtime, "export", export_id)
