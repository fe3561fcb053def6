"""Seed 000's `/devices/{id}/movements`: the windows in which a device ran, derived from its
telemetry by its `movement` setting (see `edge.movements`), with anomaly metadata.

`from`/`to` (or `fromUtc`/`toUtc`) are required and at most 31 days apart, as for raw
telemetry; movements starting in the window are listed oldest first. A device with
no `movement` setting has no movements.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Final

from litestar import Controller, Request, get
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, QueryParameter

from edge import movements
from edge.movements import Movement, MovementSettings, Usual
from edge.runtime import Runtime
from edge.store import Store, decode_cursor, encode_cursor
from web.api import params, resources, series
from web.api.dialect import Dialect
from web.api.errors import ApiError
from web.api.series import From, FromUtc, To, ToUtc

MinDuration = Annotated[int | None, QueryParameter(name="minDurationSeconds", ge=0)]
MinDurationSnake = Annotated[int | None, QueryParameter(name="min_duration_seconds", ge=0)]
DAY_MS: Final = movements.DAY_MS


def _usual(u: Usual | None) -> dict[str, float] | None:
    return None if u is None else {"p25": u.q1, "median": u.median, "p75": u.q3}


def _out(device_id: str, s: MovementSettings, unit: str | None, m: Movement) -> dict[str, Any]:
    w, a = m.window, m.anomaly
    return {
        "id": f"mov_{device_id}_{w.start_ms}",
        "device_id": device_id,
        "metric": s.metric,
        "started_at": resources.iso(w.start_ms),
        "ended_at": resources.iso(w.end_ms),
        "ongoing": w.end_ms is None,
        "duration_seconds": w.duration_s,
        "values": {"unit": unit, "samples": w.samples, "min": w.min, "max": w.max, "avg": w.avg},
        "anomaly": {
            "is_anomaly": a.is_anomaly,
            "reasons": list(a.reasons),
            "baseline_movements": a.baseline_movements,
            "baseline_days": a.baseline_days,
            "usual_duration_seconds": _usual(a.duration),
            "usual_peak": _usual(a.peak),
        },
    }


def _derive(
    store: Store, owner: Any, device_id: str, window: tuple[int, int]
) -> tuple[MovementSettings | None, str | None, list[Movement]]:
    device = store.device(owner, device_id)
    if device.movement is None:
        return None, None, []
    try:
        settings = movements.parse_settings(device.movement)
    except ValueError as error:  # set by an upstream that does not check it as we do
        raise ApiError(422, f"The device's {error}", {"field": "movement"}) from None
    point = next((p for p in store.points(owner, device_id) if p.key == settings.metric), None)
    if point is None:
        raise ApiError(422, f"Movement metric {settings.metric} is not a point of {device_id}.",
                       {"field": "movement.metric"})  # fmt: skip
    start, end = window
    found = store.movement_windows(
        owner, point.id, start - settings.baseline_days * DAY_MS, end,
        settings.threshold, settings.threshold - settings.hysteresis,
    )  # fmt: skip
    return settings, point.unit, movements.judge(found, settings, start, end)


class MovementsController(Controller):
    """Movement windows of one device."""

    path = "/devices/{device_id:str}/movements"
    tags = ["movements"]

    @get("/", opt={"scope": "movements.read"})
    async def device_movements(
        self,
        request: Request,
        runtime: NamedDependency[Runtime],
        dialect: NamedDependency[Dialect],
        device_id: FromPath[str],
        start: From = None,
        start_utc: FromUtc = None,
        end: To = None,
        end_utc: ToUtc = None,
        min_duration: MinDuration = None,
        min_duration_snake: MinDurationSnake = None,
        limit: params.PageSize = None,
        page_size: params.CamelSize = None,
        cursor: FromQuery[str | None] = None,
    ) -> dict[str, Any]:
        """Movements starting in [from, to), at least minDurationSeconds long, oldest first."""
        window = series.window(start or start_utc, end or end_utc, series.RAW_WINDOW_MS,
                               "ask for shorter windows")  # fmt: skip
        size = params.page_size(dialect, limit, page_size)
        after = decode_cursor(cursor, int)[0] if cursor else None
        settings, unit, found = await asyncio.to_thread(
            _derive, runtime.store, params.caller(request).boundary, device_id, window
        )
        if settings is None:
            return dialect.page(request, [], None, size)
        shortest = min_duration if min_duration is not None else (min_duration_snake or 0)
        rows = [m for m in found if (after is None or m.window.start_ms > after)
                and m.window.duration_s >= shortest]  # fmt: skip
        next_cursor = encode_cursor(rows[size - 1].window.start_ms) if len(rows) > size else None
        items = [_out(device_id, settings, unit, m) for m in rows[:size]]
        return dialect.page(request, items, next_cursor, size)
