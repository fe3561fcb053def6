"""`/readings` (seed 001): one series' raw readings, aggregates and summary; many series at once.

A series is named by `sensor_id` (a point's `sen_` id, as /sensors lists it) or
by `device_id` and `metric`; an unknown (or another organization's) device or
sensor is 404. A known device's metric that never reported reads as empty, as
on /telemetry. Windows follow /telemetry's rules (`web.api.series`); every read
sees only the latest version of each reading.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Final

import msgspec
from litestar import Controller, Request, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromQuery, QueryParameter

from edge.models import Owner, Page, Point
from edge.runtime import Runtime
from edge.store import AGGREGATES, InvalidCursor, NotFound
from web.api import params, resources, series
from web.api.dialect import Dialect
from web.api.errors import ApiError
from web.api.series import DeviceId, From, FromUtc, To, ToUtc

MAX_QUERIES: Final = 50
MAX_LIMIT: Final = 500
NAMING: Final = ("sensor_id", "device_id", "metric")
SensorId = Annotated[str | None, QueryParameter(name="sensorId")]


@dataclass(frozen=True, slots=True)
class Named:
    """How a request names its series and window, before either is checked."""

    sensor_id: str | None
    device_id: str | None
    metric: str | None
    start: datetime | None
    end: datetime | None


@dataclass(frozen=True, slots=True)
class Series:
    """A series found in the caller's organization; `point_id` is None if it never reported."""

    device_id: str
    metric: str
    sensor_id: str | None
    point_id: int | None

    def reading(self, r: Any) -> dict[str, Any]:
        """A reading of this series as the API shows it."""
        return {**series.reading_out(self.device_id, self.metric, r), "sensor_id": self.sensor_id}

    def head(self) -> dict[str, Any]:
        """The series' names, which every answer about it starts with."""
        return {"sensor_id": self.sensor_id, "device_id": self.device_id, "metric": self.metric}


def _named(
    sensor_id: FromQuery[str | None] = None,
    sensor_id_camel: SensorId = None,
    device_id: FromQuery[str | None] = None,
    device_id_camel: DeviceId = None,
    metric: FromQuery[str | None] = None,
    start: From = None,
    start_utc: FromUtc = None,
    end: To = None,
    end_utc: ToUtc = None,
) -> Named:
    return Named(sensor_id or sensor_id_camel, device_id or device_id_camel, metric,
                 start or start_utc, end or end_utc)  # fmt: skip


class Finder:
    """Finds series the caller may see (its organization, within its key's boundary); its
    sensors are listed at most once per request."""

    def __init__(self, runtime: Runtime, owner: Owner) -> None:
        self._store = runtime.store
        self.owner = owner
        self._sensors: dict[str, Point] | None = None

    async def find(
        self, sensor_id: str | None, device_id: str | None, metric: str | None
    ) -> Series:
        """The named series; 400 unless named exactly one way, 404 if it is not the org's."""
        if sensor_id and (device_id or metric):
            raise ApiError(400, "Name the series by sensor_id or by device_id and metric, "
                           "not both.", {"params": NAMING})  # fmt: skip
        if sensor_id:
            return await self._by_sensor(sensor_id)
        if not (device_id and metric):
            raise ApiError(400, "sensor_id, or device_id and metric, is required.",
                           {"params": NAMING})  # fmt: skip
        await self._live(device_id)
        points = await asyncio.to_thread(self._store.points, self.owner, device_id)
        point = next((p for p in points if p.key == metric), None)
        if point is None:
            return Series(device_id, metric, None, None)
        return Series(device_id, metric, point.uid, point.id)

    async def _by_sensor(self, sensor_id: str) -> Series:
        if self._sensors is None:
            points = await asyncio.to_thread(self._store.points, self.owner)
            self._sensors = {p.uid: p for p in points}
        point = self._sensors.get(sensor_id)
        if point is None:
            raise ApiError(404, f"No sensor {sensor_id}.", {"sensor_id": sensor_id})
        await self._live(point.device_id)
        return Series(point.device_id, point.key, point.uid, point.id)

    async def _live(self, device_id: str) -> None:
        try:
            await asyncio.to_thread(self._store.device, self.owner, device_id)
        except NotFound:
            raise ApiError(404, f"No device {device_id}.", {"device_id": device_id}) from None


async def _raw(
    runtime: Runtime, owner: Owner, found: Series, span: tuple[int, int], cursor: str | None, n: int
) -> Page:
    if found.point_id is None:
        return Page([], None)
    return await asyncio.to_thread(runtime.store.range, owner, found.point_id, *span, cursor, n)


class ReadingsController(Controller):
    """`/readings`: raw, aggregated, stats and batch reads of series."""

    path = "/readings"
    tags = ["readings"]
    dependencies = {"named": Provide(_named, sync_to_thread=False)}

    @get("/", opt={"scope": "telemetry.read"})
    async def raw(
        self,
        request: Request,
        runtime: NamedDependency[Runtime],
        dialect: NamedDependency[Dialect],
        named: NamedDependency[Named],
        limit: params.PageSize = None,
        page_size: params.CamelSize = None,
        cursor: FromQuery[str | None] = None,
    ) -> dict[str, Any]:
        """Raw readings of one series, oldest first, a keyset page at a time (31 days at most)."""
        owner = params.caller(request).boundary
        span = series.window(named.start, named.end, series.RAW_WINDOW_MS, "use /telemetry/export")
        size = params.page_size(dialect, limit, page_size)
        found = await Finder(runtime, owner).find(named.sensor_id, named.device_id, named.metric)
        page = await _raw(runtime, owner, found, span, cursor, size)
        return dialect.page(request, [found.reading(r) for r in page.items], page.next_cursor, size)

    @get("/aggregated", opt={"scope": "telemetry.read"})
    async def aggregated(
        self,
        request: Request,
        runtime: NamedDependency[Runtime],
        dialect: NamedDependency[Dialect],
        named: NamedDependency[Named],
        interval: FromQuery[str] = "15m",
        fn: FromQuery[str] = "avg",
    ) -> dict[str, Any]:
        """avg, min, max, sum, count, p95 or p99 of good readings per interval (366 days)."""
        owner = params.caller(request).boundary
        if fn not in AGGREGATES:
            raise ApiError(400, f"fn must be one of {', '.join(AGGREGATES)}.", {"param": "fn"})
        span = series.window(named.start, named.end, series.AGGREGATE_WINDOW_MS, "use a report")
        step = series.bucket_step_s(interval, span)
        found = await Finder(runtime, owner).find(named.sensor_id, named.device_id, named.metric)
        buckets = []
        if found.point_id is not None:
            buckets = await asyncio.to_thread(
                runtime.store.aggregate, owner, found.point_id, *span, step, fn
            )
        items = [series.bucket_out(b) for b in buckets]
        return dialect.page(request, items, None, len(items))

    @get("/stats", opt={"scope": "telemetry.read"})
    async def stats(
        self,
        request: Request,
        runtime: NamedDependency[Runtime],
        dialect: NamedDependency[Dialect],
        named: NamedDependency[Named],
    ) -> dict[str, Any]:
        """Count, min, max, avg, sum, first and last of one series' good readings (366 days)."""
        owner = params.caller(request).boundary
        span = series.window(named.start, named.end, series.AGGREGATE_WINDOW_MS, "use a report")
        found = await Finder(runtime, owner).find(named.sensor_id, named.device_id, named.metric)
        summary = None
        if found.point_id is not None:
            summary = await asyncio.to_thread(runtime.store.summary, owner, found.point_id, *span)
        return dialect.one(request, _stats_out(found, span, summary))

    @post("/batch", opt={"scope": "telemetry.read"}, status_code=200)
    async def batch(
        self, request: Request, runtime: NamedDependency[Runtime], dialect: NamedDependency[Dialect]
    ) -> dict[str, Any]:
        """Raw readings of up to 50 series in one call; each query succeeds or fails alone."""
        queries = _queries(params.json_body(dialect, await request.body()))
        finder = Finder(runtime, params.caller(request).boundary)
        results = [await _answer(runtime, finder, i, q) for i, q in enumerate(queries)]
        return dialect.one(request, {"results": results})


def _stats_out(found: Series, span: tuple[int, int], s: Any) -> dict[str, Any]:
    """The window's summary; with no good reading in it, a count of 0 and no values."""
    out: dict[str, Any] = {
        **found.head(), "from": resources.iso(span[0]), "to": resources.iso(span[1]),
        "count": 0, "min": None, "max": None, "avg": None, "sum": None,
        "first": None, "last": None,
    }  # fmt: skip
    if s is not None and s.count:
        out.update(
            count=s.count, min=s.min, max=s.max, avg=s.avg, sum=s.sum,
            first={"ts": resources.iso(s.first_ts_ms), "value": s.first},
            last={"ts": resources.iso(s.last_ts_ms), "value": s.last},
        )  # fmt: skip
    return out


class _Query(msgspec.Struct, frozen=True):
    """One query of a batch, in snake_case (the dialect has renamed it)."""

    sensor_id: str | None = None
    device_id: str | None = None
    metric: str | None = None
    start: datetime | None = msgspec.field(default=None, name="from")
    end: datetime | None = msgspec.field(default=None, name="to")
    from_utc: datetime | None = None
    to_utc: datetime | None = None
    limit: int | None = None
    page_size: int | None = None
    cursor: str | None = None

    @property
    def size(self) -> int:
        if self.limit is not None:
            return self.limit
        return params.DEFAULT_PAGE if self.page_size is None else self.page_size


def _queries(body: dict[str, Any]) -> list[_Query]:
    """Every query of the body, or 422 listing each one that is malformed."""
    items = body.get("queries")
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_QUERIES:
        raise ApiError(422, f"The body needs a queries list of 1 to {MAX_QUERIES} queries.",
                       {"field": "queries", "max": MAX_QUERIES})  # fmt: skip
    queries: list[_Query] = []
    errors: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        try:
            query = msgspec.convert(item, _Query)
        except msgspec.ValidationError as error:
            errors.append({"index": index, "message": str(error).replace("`", "")})
            continue
        if not 1 <= query.size <= MAX_LIMIT:
            errors.append({"index": index, "message": f"limit must be 1 to {MAX_LIMIT}"})
        queries.append(query)
    if errors:
        raise ApiError(422, f"{len(errors)} of {len(items)} queries are malformed; none run.",
                       {"errors": errors})  # fmt: skip
    return queries


async def _answer(runtime: Runtime, finder: Finder, index: int, q: _Query) -> dict[str, Any]:
    """One query's readings and next cursor, or its own error object."""
    try:
        span = series.window(q.start or q.from_utc, q.end or q.to_utc, series.RAW_WINDOW_MS,
                             "use /telemetry/export")  # fmt: skip
        found = await finder.find(q.sensor_id, q.device_id, q.metric)
        page = await _raw(runtime, finder.owner, found, span, q.cursor, q.size)
    except ApiError as error:
        return {"index": index, "error": _failure(error)}
    except InvalidCursor:
        invalid = ApiError(400, "The cursor is not valid.", {"param": "cursor"})
        return {"index": index, "error": _failure(invalid)}
    readings = [found.reading(r) for r in page.items]
    return {"index": index, **found.head(), "readings": readings, "next_cursor": page.next_cursor}


def _failure(error: ApiError) -> dict[str, Any]:
    """The error body's fields for one query; the request id is the whole answer's."""
    return {"status": error.status, "code": error.code, "message": error.message,
            "details": error.details}  # fmt: skip
