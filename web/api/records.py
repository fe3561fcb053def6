"""What every maintenance resource shares: its API object, body times, windows, and one
controller base (get, create and, for master data, change and delete) made per kind.

A record is shown as its fields (times as ISO-8601) with `id` and `<kind>_id` (Sepolo's
`assetId`, `serviceReportId`, ...), its ETag and its times. A create may name the id
(the kind's prefix): resent with the same fields it answers 200 with the stored record,
so a client retrying after a lost answer, or the sync agent resending, makes no duplicate.
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Final

from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, QueryParameter

from edge.maintenance import KINDS, REPORT_STATES, Kind, Record
from edge.runtime import Runtime
from edge.store import RecordFilter
from web.api import params, resources
from web.api.dialect import Dialect
from web.api.errors import ApiError
from web.api.series import From, FromUtc, To, ToUtc

SinceCamel = Annotated[datetime | None, QueryParameter(name="updatedSince")]
Status = Annotated[str | None, QueryParameter(pattern="^(active|inactive|all)$")]
STATUS_ACTIVE = {"active": 1, "inactive": 0}


def out(kind: Kind, r: Record) -> dict[str, Any]:
    """A record as the API shows it (snake_case; the dialect renames)."""
    fields = {k: resources.iso(v) if k in kind.times else v for k, v in r.fields.items()}
    if kind.name == "service_reports":
        fields["state_text"] = REPORT_STATES[fields["state"]]
    return {"id": r.id, f"{kind.noun}_id": r.id, **fields, "etag": resources.etag(r),
            "created_at": resources.iso(r.created_at), "updated_at": resources.iso(r.updated_at),
            "deleted_at": resources.iso(r.deleted_at)}  # fmt: skip


def inbound(kind: Kind, body: dict[str, Any]) -> dict[str, Any]:
    """A body's times (ISO-8601 with a zone) as epoch ms; 422 naming a field that is not one."""
    fields = dict(body)
    for name in kind.times:
        value = fields.get(name)
        if value is None:
            continue
        try:
            when = datetime.fromisoformat(value) if isinstance(value, str) else None
        except ValueError:
            when = None
        if when is None or when.tzinfo is None:
            raise ApiError(422, f"{name} must be an ISO-8601 time with a zone (e.g. Z).",
                           {"field": name})  # fmt: skip
        fields[name] = int(when.timestamp() * 1000)
    return fields


def span(
    start: datetime | None, end: datetime | None, longest_ms: int | None
) -> tuple[int | None, int | None]:
    """[from, to) in epoch ms; with one bound the other is `longest_ms` away (open without a
    limit); 400 if inverted or longer than the limit."""
    start_ms, end_ms = resources.epoch_ms(start, "from"), resources.epoch_ms(end, "to")
    if longest_ms is not None and (start_ms is None) != (end_ms is None):
        start_ms = end_ms - longest_ms if start_ms is None else start_ms  # type: ignore[operator]
        end_ms = start_ms + longest_ms if end_ms is None else end_ms
    if start_ms is not None and end_ms is not None:
        if end_ms <= start_ms:
            raise ApiError(400, "to must be after from.", {"params": ["from", "to"]})
        if longest_ms is not None and end_ms - start_ms > longest_ms:
            days = longest_ms // 86_400_000
            raise ApiError(400, f"The window is longer than {days} days.", {"max_days": days})
    return start_ms, end_ms


@dataclass(frozen=True, slots=True)
class Paging:
    """What every listing reads: page size, cursor and updated_since."""

    size: int
    cursor: str | None
    since: int | None


async def _paging(
    dialect: NamedDependency[Dialect],
    limit: params.PageSize = None,
    page_size: params.CamelSize = None,
    cursor: FromQuery[str | None] = None,
    updated_since: FromQuery[datetime | None] = None,
    updated_since_camel: SinceCamel = None,
) -> Paging:
    since = resources.epoch_ms(updated_since or updated_since_camel, "updated_since")
    return Paging(params.page_size(dialect, limit, page_size), cursor, since)


@dataclass(frozen=True, slots=True)
class Window:
    """A time window as asked (`from`/`fromUtc`, `to`/`toUtc`)."""

    start: datetime | None
    end: datetime | None

    def span(self, longest_ms: int | None = None) -> tuple[int | None, int | None]:
        """[from, to) in epoch ms, within `longest_ms` if given (else 400)."""
        return span(self.start, self.end, longest_ms)


async def _window(
    start: From = None, start_utc: FromUtc = None, end: To = None, end_utc: ToUtc = None
) -> Window:
    return Window(start or start_utc, end or end_utc)


WINDOW: Final = {"window": Provide(_window)}


def wanted(start_end: tuple[int | None, int | None] = (None, None), **equal: Any) -> RecordFilter:
    """A listing's filter: the columns given (None: not filtered) and a window."""
    return RecordFilter({k: v for k, v in equal.items() if v is not None}, *start_end)


def answer(
    request: Request, dialect: Dialect, kind: Kind, r: Record, status: int = 200
) -> Response[dict[str, Any]]:
    return Response(dialect.one(request, out(kind, r)), status_code=status,
                    headers={"ETag": resources.etag(r)})  # fmt: skip


async def listing(
    request: Request, runtime: Runtime, dialect: Dialect, kind: str, where: RecordFilter,
    cursor: str | None, size: int,
) -> dict[str, Any]:  # fmt: skip
    """One page of a kind's records in the dialect's envelope."""
    page = await asyncio.to_thread(runtime.store.record_page, params.caller(request).boundary,
                                   kind, where, cursor, size)  # fmt: skip
    return dialect.page(request, [out(KINDS[kind], r) for r in page.items], page.next_cursor,
                        size)  # fmt: skip


def _new(kind: Kind, body: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    """(the id the body names, if any; the fields)."""
    fields = inbound(kind, body)
    named = [fields.pop(k) for k in ("id", f"{kind.noun}_id") if k in fields]
    if any(not isinstance(n, str) for n in named) or len(set(named)) > 1:
        raise ApiError(422, f"id and {kind.noun}_id must be one string.", {"field": "id"})
    return (named[0] if named else None), fields


def controller(
    kind_name: str,
    path: str,
    scopes: tuple[str, str],
    where: Any,
    listed: str,
) -> type[Controller]:
    """The controller of one kind at `path`: its listing (filtered by the dependency
    `where`, which makes a RecordFilter of its own query parameters; `listed` describes
    it), GET by id and POST, and PATCH and DELETE as the kind allows. `scopes`: (read,
    write)."""
    kind = KINDS[kind_name]
    read, write = scopes

    class Records(Controller):
        """One kind of maintenance record."""

        tags = ["maintenance"]
        dependencies = {"paging": Provide(_paging), "where": Provide(where), **WINDOW}

        @get("/", opt={"scope": read}, description=listed)
        async def list_records(
            self,
            request: Request,
            runtime: NamedDependency[Runtime],
            dialect: NamedDependency[Dialect],
            paging: NamedDependency[Paging],
            where: NamedDependency[RecordFilter],
        ) -> dict[str, Any]:
            """A keyset page in (updated_at, id) order; with updated_since, deleted ones too."""
            chosen = dataclasses.replace(where, updated_since=paging.since)
            return await listing(request, runtime, dialect, kind.name, chosen, paging.cursor,
                                 paging.size)  # fmt: skip

        @get("/{record_id:str}", opt={"scope": read})
        async def get_record(
            self,
            request: Request,
            runtime: NamedDependency[Runtime],
            dialect: NamedDependency[Dialect],
            record_id: FromPath[str],
        ) -> Response[dict[str, Any]]:
            """One record, with its ETag."""
            found = await asyncio.to_thread(runtime.store.record, params.caller(request).boundary,
                                            kind.name, record_id)  # fmt: skip
            return answer(request, dialect, kind, found)

        @post("/", opt={"scope": write})
        async def create_record(
            self, request: Request, runtime: NamedDependency[Runtime],
            dialect: NamedDependency[Dialect],
        ) -> Response[dict[str, Any]]:  # fmt: skip
            """Add a record (201); the same id and fields again answer the stored one (200)."""
            record_id, fields = _new(kind, params.json_body(dialect, await request.body()))
            made, created = await asyncio.to_thread(
                runtime.store.create_record, params.caller(request).boundary, kind.name, fields,
                record_id,
            )  # fmt: skip
            return answer(request, dialect, kind, made, 201 if created else 200)

        if "patch" in kind.writes:

            @patch("/{record_id:str}", opt={"scope": write})
            async def update_record(
                self,
                request: Request,
                runtime: NamedDependency[Runtime],
                dialect: NamedDependency[Dialect],
                record_id: FromPath[str],
            ) -> Response[dict[str, Any]]:
                """Change some fields; a stale If-Match gets 409."""
                changes = inbound(kind, params.json_body(dialect, await request.body()))
                updated = await asyncio.to_thread(
                    runtime.store.update_record, params.caller(request).boundary, kind.name,
                    record_id, changes, params.if_match(request),
                )  # fmt: skip
                return answer(request, dialect, kind, updated)

        if "delete" in kind.writes:

            @delete("/{record_id:str}", opt={"scope": write}, status_code=204)
            async def delete_record(
                self, request: Request, runtime: NamedDependency[Runtime],
                record_id: FromPath[str],
            ) -> None:  # fmt: skip
                """Remove a record (soft: `updated_since` listings show it deleted)."""
                owner = params.caller(request).boundary
                await asyncio.to_thread(runtime.store.delete_record, owner, kind.name, record_id)

    Records.path = path
    Records.__name__ = Records.__qualname__ = f"{kind.noun.title().replace('_', '')}sController"
    return Records
