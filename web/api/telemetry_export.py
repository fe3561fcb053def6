"""`GET /telemetry/export` (seed 002): a signed, hour-long link to a CSV of a device's readings.

The link is its own credential: `edge.signing` signs its method, path, every
parameter (the organization among them) and its expiry, so the download route
takes no API key. The download re-checks the device, then streams the CSV
(`device_id,metric,ts,value,quality,correction`, by time) page by page through
the store's keyset cursor: a year of readings never sits in memory at once.
"""

from __future__ import annotations

import asyncio
import csv
import heapq
import io
import re
import time
from collections import deque
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any, Final
from urllib.parse import quote, urlencode

from litestar import Controller, Request, get
from litestar.di import NamedDependency
from litestar.params import FromQuery, QueryParameter
from litestar.response import Stream

from edge.models import StoredReading
from edge.runtime import Runtime
from edge.signing import Signer
from edge.store import Store
from web.api import params, resources, series
from web.api.dialect import Dialect
from web.api.errors import ApiError
from web.api.series import DeviceId, From, FromUtc, To, ToUtc

LINK_TTL_S: Final = 3600
FORMATS: Final = ("csv",)
COLUMNS: Final = ("device_id", "metric", "ts", "value", "quality", "correction")
# Readings fetched per store call and per point, and rows per chunk sent: what one open
# download holds in memory is about this many rows for each metric it exports.
EXPORT_PAGE: Final = 500
DOWNLOAD: Final = "/telemetry/export/download"
# The parameters every link carries, besides `metrics` (only when the caller chose some).
SIGNED: Final = ("org_id", "device_id", "from", "to", "format")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")
Format = Annotated[str, QueryParameter(name="format")]


class TelemetryExportController(Controller):
    """The export link and its public, signature-checked download."""

    path = "/telemetry/export"
    tags = ["telemetry"]

    @get("/", opt={"scope": "telemetry.read"})
    async def export(
        self,
        request: Request,
        runtime: NamedDependency[Runtime],
        dialect: NamedDependency[Dialect],
        device_id: FromQuery[str | None] = None,
        device_id_camel: DeviceId = None,
        metric: FromQuery[str | None] = None,
        metrics: FromQuery[str | None] = None,
        start: From = None,
        start_utc: FromUtc = None,
        end: To = None,
        end_utc: ToUtc = None,
        export_format: Format = "csv",
    ) -> dict[str, Any]:
        """A link, valid for an hour, to a CSV of a device's readings (up to 366 days)."""
        org = params.caller(request).org_id
        device = series.required(device_id or device_id_camel, "device_id")
        if export_format.lower() not in FORMATS:
            raise ApiError(400, f"format {export_format} is not supported; the supported format "
                           "is csv.", {"param": "format", "supported": list(FORMATS)})  # fmt: skip
        span = series.window(start or start_utc, end or end_utc, series.AGGREGATE_WINDOW_MS,
                             "export it in parts")  # fmt: skip
        await asyncio.to_thread(runtime.store.device, params.caller(request).boundary, device)
        made = link(request, dialect, org, device, _metrics(metric, metrics), span)
        return dialect.one(request, made)

    @get("/download", opt={"public": True}, media_type="text/csv")
    async def download(self, request: Request, runtime: NamedDependency[Runtime]) -> Stream:
        """The CSV a signed link names; 403 if the link was altered or has expired."""
        query = _verified(request)
        org, device = query["org_id"], query["device_id"]
        await asyncio.to_thread(runtime.store.device, org, device)
        points = await asyncio.to_thread(runtime.store.points, org, device)
        wanted = query["metrics"].split(",") if "metrics" in query else None
        keys = {p.id: p.key for p in points if wanted is None or p.key in wanted}
        span = (_ms(query["from"]), _ms(query["to"]))
        return Stream(_csv(runtime.store, org, device, keys, span), media_type="text/csv",
                      headers={"Content-Disposition": _disposition(device, span)})  # fmt: skip


def _metrics(metric: str | None, metrics: str | None) -> list[str] | None:
    """`metric` and the comma-separated `metrics`, in order without repeats; None for all."""
    named = [m.strip() for m in f"{metric or ''},{metrics or ''}".split(",") if m.strip()]
    return list(dict.fromkeys(named)) or None


def link(
    request: Request,
    dialect: Dialect,
    org_id: str,
    device_id: str,
    metrics: list[str] | None,
    span: tuple[int, int],
) -> dict[str, Any]:
    """The signed download URL, its expiry and what it exports."""
    signer: Signer = request.app.state.signer
    expires_at = int(time.time()) + LINK_TTL_S
    path = dialect.prefix + DOWNLOAD
    query = {"org_id": org_id, "device_id": device_id, "from": resources.iso(span[0]),
             "to": resources.iso(span[1]), "format": "csv"}  # fmt: skip
    if metrics:
        query["metrics"] = ",".join(metrics)
    signature = signer.sign("GET", path, query, expires_at)
    signed = urlencode({**query, "expires": expires_at, "signature": signature}, quote_via=quote)
    return {
        "url": f"{str(request.base_url).rstrip('/')}{path}?{signed}",
        "expires_at": resources.iso(expires_at * 1000),
        "format": "csv",
        "device_id": device_id,
        "metrics": metrics,
        "from": query["from"],
        "to": query["to"],
    }


def _verified(request: Request) -> dict[str, str]:
    """The link's parameters, once its signature and expiry hold; 403 otherwise."""
    items = list(request.query_params.multi_items())
    query = dict(items)
    signature = query.pop("signature", "")
    expires = query.pop("expires", "")
    signer: Signer = request.app.state.signer
    valid = (
        len(query) + 2 == len(items)  # a repeated parameter is not what was signed
        and all(name in query for name in SIGNED)
        and expires.isascii()
        and expires.isdigit()
        and signer.verify("GET", request.url.path, query, int(expires), signature)
    )
    if not valid:
        raise ApiError(403, "The download link is not valid or has expired; ask "
                       "/telemetry/export for a new one.")  # fmt: skip
    return query


def _ms(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp() * 1000)


def _disposition(device_id: str, span: tuple[int, int]) -> str:
    stamps = "_".join(datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y%m%dT%H%M%SZ")
                      for ms in span)  # fmt: skip
    return f'attachment; filename="{_UNSAFE.sub("_", device_id)}_{stamps}.csv"'


class _Pager:
    """One point's readings in the window, fetched a page at a time through the store's cursor."""

    def __init__(self, store: Store, org_id: str, point_id: int, span: tuple[int, int]) -> None:
        self._fetch = (store.range, org_id, point_id, *span)
        self._rows: deque[StoredReading] = deque()
        self._cursor: str | None = None
        self._done = False

    async def next(self) -> StoredReading | None:
        """The next reading by (ts, seq), or None after the last."""
        if not self._rows and not self._done:
            fetch, *args = self._fetch
            page = await asyncio.to_thread(fetch, *args, self._cursor, EXPORT_PAGE)
            self._rows.extend(page.items)
            self._cursor = page.next_cursor
            self._done = page.next_cursor is None
        return self._rows.popleft() if self._rows else None


async def _csv(
    store: Store, org_id: str, device_id: str, keys: dict[int, str], span: tuple[int, int]
) -> AsyncIterator[bytes]:
    """The CSV in chunks: each metric's pages merged by (ts, metric), as they are read."""
    pagers = {key: _Pager(store, org_id, point, span) for point, key in keys.items()}
    heap: list[tuple[int, str, int, StoredReading]] = []
    for key, pager in pagers.items():
        first = await pager.next()
        if first is not None:
            heap.append((first.ts_ms, key, first.seq, first))
    heapq.heapify(heap)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    written = 0
    while heap:
        _, key, _, r = heap[0]
        value = "" if r.value is None else r.value
        writer.writerow((device_id, key, resources.iso(r.ts_ms), value, r.quality.name.lower(),
                         "true" if r.correction else "false"))  # fmt: skip
        following = await pagers[key].next()
        if following is None:
            heapq.heappop(heap)
        else:
            heapq.heapreplace(heap, (following.ts_ms, key, following.seq, following))
        written += 1
        if written % EXPORT_PAGE == 0:
            yield out.getvalue().encode()
            out.seek(0)
            out.truncate()
    yield out.getvalue().encode()
