"""Telemetry: ingest (all-or-nothing, gzip, Idempotency-Key), raw queries, aggregates.

Windows: `from` inclusive, `to` exclusive (`fromUtc`/`toUtc` accepted); at most
31 days of raw readings and 366 days of aggregates per call, else 400.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import hashlib
import io
import time
from datetime import datetime
from typing import Any, Final

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery

from edge.models import Owner, Quality, Reading
from edge.runtime import Runtime
from edge.store import AGGREGATES, IdempotentAnswer
from web.api import params, series
from web.api.auth import Caller
from web.api.dialect import Dialect
from web.api.errors import ApiError
from web.api.series import DeviceId, From, FromUtc, To, ToUtc

MAX_READINGS: Final = 1_000
# A gzip body may inflate to at most this: 1,000 readings never need more.
MAX_INFLATED: Final = 4 * 1024 * 1024
QUALITIES: Final = {q.name.lower(): q for q in Quality}
# How long a resolved point id is trusted without asking the store again.
POINT_CACHE_S: Final = 5.0
POINT_CACHE_MAX: Final = 100_000


class _Incoming(msgspec.Struct, frozen=True):
    device_id: str
    metric: str
    ts: datetime
    value: float | None = None
    quality: str = "good"
    correction: bool = False


class _Batch(msgspec.Struct, frozen=True):
    readings: list[_Incoming]


class TelemetryController(Controller):
    """`/telemetry` and its ingest and aggregate endpoints."""

    path = "/telemetry"
    tags = ["telemetry"]

    @post("/ingest", opt={"scope": "telemetry.write", "ingest": True}, status_code=200)
    async def ingest(
        self, request: Request, runtime: NamedDependency[Runtime], dialect: NamedDependency[Dialect]
    ) -> Response[Any]:
        """Store up to 1,000 readings, all or none; a repeated Idempotency-Key replays."""
        caller: Caller = params.caller(request)
        raw = await request.body()
        if request.headers.get("content-encoding", "").lower() == "gzip":
            raw = _inflate(raw)
        idem_key = request.headers.get("idempotency-key")
        digest = hashlib.sha256(raw).hexdigest()
        inflight: set[tuple[str, str]] = request.app.state.ingest_inflight
        if idem_key is not None:
            replay = await _replay(runtime, caller, idem_key, digest)
            if replay is not None:
                return replay
            if (caller.key.id, idem_key) in inflight:
                raise ApiError(409, "A request with this Idempotency-Key is in progress.")
            inflight.add((caller.key.id, idem_key))
        try:
            cache = request.app.state.point_cache
            readings, count = await _readings(runtime, caller, dialect, cache, raw)
            body = dialect.one(request, {"accepted": count})
            encoded = msgspec.json.encode(body)
            answer = None
            if idem_key is not None:
                answer = IdempotentAnswer(caller.key.id, idem_key, digest, 200, encoded)
            await runtime.store.append_readings_async(readings, idempotency=answer)
        finally:
            if idem_key is not None:
                inflight.discard((caller.key.id, idem_key))
        return Response(encoded, media_type="application/json")

    @get("/", opt={"scope": "telemetry.read"})
    async def query(
        self,
        request: Request,
        runtime: NamedDependency[Runtime],
        dialect: NamedDependency[Dialect],
        metric: FromQuery[str],
        device_id: FromQuery[str | None] = None,
        device_id_camel: DeviceId = None,
        start: From = None,
        start_utc: FromUtc = None,
        end: To = None,
        end_utc: ToUtc = None,
        limit: params.PageSize = None,
        page_size: params.CamelSize = None,
        cursor: FromQuery[str | None] = None,
    ) -> dict[str, Any]:
        """Raw readings of one device's metric, oldest first."""
        caller: Caller = params.caller(request)
        device = series.required(device_id or device_id_camel, "device_id")
        window = series.window(
            start or start_utc, end or end_utc, series.RAW_WINDOW_MS, "use /telemetry/export"
        )
        size = params.page_size(dialect, limit, page_size)
        point = await _point(runtime, caller, device, metric)
        if point is None:
            return dialect.page(request, [], None, size)
        page = await asyncio.to_thread(
            runtime.store.range, caller.boundary, point, *window, cursor, size
        )
        items = [series.reading_out(device, metric, r) for r in page.items]
        return dialect.page(request, items, page.next_cursor, size)

    @get("/aggregate", opt={"scope": "telemetry.read"})
    async def aggregate(
        self,
        request: Request,
        runtime: NamedDependency[Runtime],
        dialect: NamedDependency[Dialect],
        metric: FromQuery[str],
        interval: FromQuery[str] = "15m",
        fn: FromQuery[str] = "avg",
        device_id: FromQuery[str | None] = None,
        device_id_camel: DeviceId = None,
        start: From = None,
        start_utc: FromUtc = None,
        end: To = None,
        end_utc: ToUtc = None,
    ) -> dict[str, Any]:
        """avg, min, max, sum, count, p95 or p99 of good readings per interval."""
        caller: Caller = params.caller(request)
        device = series.required(device_id or device_id_camel, "device_id")
        if fn not in AGGREGATES:
            raise ApiError(400, f"fn must be one of {', '.join(AGGREGATES)}.", {"param": "fn"})
        window = series.window(start or start_utc, end or end_utc, series.AGGREGATE_WINDOW_MS,
                         "use a report")  # fmt: skip
        step = series.bucket_step_s(interval, window)
        point = await _point(runtime, caller, device, metric)
        buckets = []
        if point is not None:
            buckets = await asyncio.to_thread(
                runtime.store.aggregate, caller.boundary, point, *window, step, fn
            )
        items = [series.bucket_out(b) for b in buckets]
        return dialect.page(request, items, None, len(items))


class DeviceTelemetryController(Controller):
    """Sepolo's `/devices/{id}/telemetry`: every metric of a device in a window."""

    path = "/devices/{device_id:str}/telemetry"
    tags = ["telemetry"]

    @get("/", opt={"scope": "telemetry.read"})
    async def device_telemetry(
        self,
        request: Request,
        runtime: NamedDependency[Runtime],
        dialect: NamedDependency[Dialect],
        device_id: FromPath[str],
        metrics: FromQuery[str | None] = None,
        start: From = None,
        start_utc: FromUtc = None,
        end: To = None,
        end_utc: ToUtc = None,
        limit: params.PageSize = None,
        page_size: params.CamelSize = None,
        cursor: FromQuery[str | None] = None,
    ) -> dict[str, Any]:
        """Readings of the device's metrics (all, or the comma-separated `metrics`)."""
        caller: Caller = params.caller(request)
        window = series.window(
            start or start_utc, end or end_utc, series.RAW_WINDOW_MS, "use /exports"
        )
        size = params.page_size(dialect, limit, page_size)
        await asyncio.to_thread(runtime.store.device, caller.boundary, device_id)
        wanted = {m.strip() for m in metrics.split(",") if m.strip()} if metrics else None
        points = await asyncio.to_thread(runtime.store.points, caller.boundary, device_id)
        keys = {p.id: p.key for p in points if wanted is None or p.key in wanted}
        if not keys:
            return dialect.page(request, [], None, size)
        page = await asyncio.to_thread(
            runtime.store.device_range, caller.boundary, list(keys), *window, cursor, size
        )
        items = [series.reading_out(device_id, keys[r.point_id], r) for r in page.items]
        return dialect.page(request, items, page.next_cursor, size)


def _inflate(raw: bytes) -> bytes:
    try:
        inflater = gzip.GzipFile(fileobj=io.BytesIO(raw))
        data = inflater.read(MAX_INFLATED + 1)
    except (OSError, EOFError):
        raise ApiError(400, "The body is not valid gzip.") from None
    if len(data) > MAX_INFLATED:
        raise ApiError(413, "The inflated body is too large.")
    return data


async def _replay(runtime: Runtime, caller: Caller, idem_key: str, digest: str) -> Response | None:
    found = await asyncio.to_thread(runtime.store.idempotent_answer, caller.key.id, idem_key)
    if found is None:
        return None
    request_hash, status, body = found
    if request_hash != digest:
        raise ApiError(422, "This Idempotency-Key was used for a different request.",
                       {"header": "Idempotency-Key"})  # fmt: skip
    return Response(body, status_code=status, media_type="application/json",
                    headers={"Idempotent-Replayed": "true"})  # fmt: skip


async def _point(runtime: Runtime, caller: Caller, device_id: str, metric: str) -> int | None:
    await asyncio.to_thread(runtime.store.device, caller.boundary, device_id)
    found, _ = await asyncio.to_thread(
        runtime.store.point_ids, caller.boundary, {(device_id, metric)}, False
    )
    return found.get((device_id, metric))


async def _readings(
    runtime: Runtime, caller: Caller, dialect: Dialect, cache: PointCache, raw: bytes
) -> tuple[list[Reading], int]:
    """Validate every reading (all or nothing) and resolve their points."""
    if not dialect.camel_case:
        # The common case in one typed decode; any problem is then located reading by reading.
        with contextlib.suppress(msgspec.DecodeError, msgspec.ValidationError):
            batch = msgspec.json.decode(raw, type=_Batch)
            if len(batch.readings) <= MAX_READINGS:
                return await _resolved(runtime, caller, cache, _checked(batch.readings))
    try:
        body = dialect.inbound(msgspec.json.decode(raw))
    except msgspec.DecodeError:
        raise ApiError(400, "The body is not valid JSON.") from None
    items = body.get("readings") if isinstance(body, dict) else None
    if not isinstance(items, list):
        raise ApiError(422, "The body needs a readings list.", {"field": "readings"})
    if len(items) > MAX_READINGS:
        raise ApiError(422, f"At most {MAX_READINGS} readings per request.",
                       {"field": "readings", "count": len(items)})  # fmt: skip
    incoming: list[_Incoming | None] = []
    errors: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        try:
            incoming.append(msgspec.convert(item, _Incoming))
        except msgspec.ValidationError as error:
            incoming.append(None)
            errors.append({"index": index, "message": _why(error)})
    return await _resolved(runtime, caller, cache, _checked(incoming, errors))


def _checked(
    incoming: list[_Incoming] | list[_Incoming | None], errors: list[dict[str, Any]] | None = None
) -> list[tuple[_Incoming, int, Quality]]:
    """Each reading with its epoch ms and quality; 422 listing every reading that is wrong."""
    parsed: list[tuple[_Incoming, int, Quality]] = []
    errors = list(errors or [])
    for index, reading in enumerate(incoming):
        if reading is None:
            continue  # already listed in errors
        quality = QUALITIES.get(reading.quality)
        if reading.ts.tzinfo is None:
            errors.append({"index": index, "message": "ts needs a time zone (e.g. Z)"})
        elif quality is None:
            errors.append({"index": index, "message": _why(KeyError(reading.quality))})
        elif quality is Quality.GOOD and reading.value is None:
            errors.append({"index": index, "message": "a good reading needs a value"})
        else:
            parsed.append((reading, int(reading.ts.timestamp() * 1000), quality))
    if errors:
        errors.sort(key=lambda e: e["index"])
        raise ApiError(422, f"{len(errors)} of {len(incoming)} readings are not valid; none "
                       "stored.", {"errors": errors[:100]})  # fmt: skip
    return parsed


async def _resolved(
    runtime: Runtime,
    caller: Caller,
    cache: PointCache,
    parsed: list[tuple[_Incoming, int, Quality]],
) -> tuple[list[Reading], int]:
    pairs = {(r.device_id, r.metric) for r, _, _ in parsed}
    own = caller.key.device_id
    if own is not None and any(device != own for device, _ in pairs):
        raise ApiError(403, "This device's key may only send its own telemetry.",
                       {"device_id": own})  # fmt: skip
    found = cache.get(caller.boundary, pairs)
    missing = pairs - found.keys()
    unknown: list[tuple[str, str]] = []
    if missing:
        more, unknown = await asyncio.to_thread(runtime.store.point_ids, caller.boundary, missing)
        cache.put(caller.boundary, more)
        found.update(more)
    if unknown:
        missing = sorted({d for d, _ in unknown})
        raise ApiError(422, "Unknown device; none stored.", {"unknown_devices": missing[:100]})
    readings = [
        Reading(found[r.device_id, r.metric], ts, r.value if q is Quality.GOOD else None, q,
                r.correction)
        for r, ts, q in parsed
    ]  # fmt: skip
    return readings, len(readings)


class PointCache:
    """Recently resolved (device, metric) -> point ids, so steady ingest skips the lookup.

    Entries live `POINT_CACHE_S`; a device deleted through the API is forgotten at once.
    """

    def __init__(self) -> None:
        # Keyed by the caller's boundary: a key limited to some groups must not be answered
        # from what a wider key of the same organization resolved.
        self._entries: dict[tuple[Owner, str, str], tuple[int, float]] = {}

    def get(self, owner: Owner, pairs: set[tuple[str, str]]) -> dict[tuple[str, str], int]:
        now = time.monotonic()
        found = {}
        for device, metric in pairs:
            hit = self._entries.get((owner, device, metric))
            if hit is not None and now - hit[1] < POINT_CACHE_S:
                found[device, metric] = hit[0]
        return found

    def put(self, owner: Owner, found: dict[tuple[str, str], int]) -> None:
        if len(self._entries) > POINT_CACHE_MAX:
            self._entries.clear()
        now = time.monotonic()
        for (device, metric), point in found.items():
            self._entries[owner, device, metric] = (point, now)

    def forget_device(self, device_id: str) -> None:
        for key in [k for k in self._entries if k[1] == device_id]:
            del self._entries[key]


def _why(error: Exception) -> str:
    if isinstance(error, ApiError):
        return error.message
    if isinstance(error, KeyError):
        return f"quality must be one of {', '.join(QUALITIES)}"
    return str(error).replace("`", "")
