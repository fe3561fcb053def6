"""Devices: the list with filters, a device's page (live values and quality, a trend chart,
poll diagnostics, writes with confirmation, pins), and the chart's data.

The device page polls its `#live` part every 3 s; the chart fetches
`/devices/{id}/series` (averages in about 300 buckets over the chosen range)
and without JavaScript the page shows the range's count, min, avg and max.
"""

from __future__ import annotations

import asyncio
from typing import Any, Final

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery

from edge.models import Device, now_ms
from edge.runtime import CommandRefused, DeviceDriver, Runtime
from edge.store import NotFound
from web.ui import data, pages, sessions

# Range name -> (span, bucket) in seconds: about 300 points per chart, whatever the range.
RANGES: Final = {
    "1h": (3_600, 10),
    "24h": (86_400, 300),
    "7d": (604_800, 1_800),
    "30d": (2_592_000, 7_200),
    "1y": (31_536_000, 86_400),
}
TECH: Final = {"role": "technician"}
BITS: Final = frozenset({"bool", "bit"})


def device_list(
    runtime: Runtime, status: str, kind: str, text: str, site: str = ""
) -> dict[str, Any]:
    """The devices matching the filters (any empty filter matches all)."""
    rows = data.devices(runtime)
    sites = data.sites(runtime, rows)
    shown = [
        (d, s)
        for d, s in rows
        if (not status or s == status)
        and (not kind or d.type == kind)
        and (not site or d.site_id == site)
        and (not text or text.lower() in f"{d.name} {d.id} {' '.join(d.tags)}".lower())
    ]
    return {
        "rows": shown,
        "total": len(rows),
        "counts": data.by_status(rows),
        "types": sorted({d.type for d, _ in rows}),
        "sites": sites,
        "site_names": {x["id"]: x["name"] for x in sites},
        "filters": {"status": status, "type": kind, "q": text, "site": site},
    }


def device_context(runtime: Runtime, device_id: str, point: str, span: str) -> dict[str, Any]:
    """A device's page: values, health, the chart's choices and the range's summary."""
    store = runtime.store
    org = store.organization.id
    device = store.device(org, device_id)
    points = store.points(org, device.id)
    numeric = [p for p in points if p.data_type != "string"]
    # Without a choice, the first analogue point: a chart of a bit says little.
    analogue = [p for p in numeric if p.data_type not in BITS] or numeric
    chosen = next((p for p in numeric if p.key == point), analogue[0] if analogue else None)
    span = span if span in RANGES else "24h"
    now = now_ms()
    summary = None
    if chosen is not None:
        summary = store.summary(org, chosen.id, now - RANGES[span][0] * 1000, now + 1)
    return {
        "device": device,
        "status": runtime.device_status(device),
        "health": _health(runtime, device),
        "values": data.values(runtime, numeric),
        "pinned": set(store.pinned_points(org)),
        "chart_points": numeric,
        "chosen": chosen,
        "range": span,
        "ranges": list(RANGES),
        "summary": summary,
        "now": now,
    }


def _health(runtime: Runtime, device: Device) -> dict[str, Any]:
    driver = runtime.driver_of(device)
    return (driver.health(device.id) if driver is not None else None) or {}


def series(runtime: Runtime, device_id: str, point: str, span: str) -> dict[str, Any]:
    """Averages over the range for the chart: times in epoch seconds, values (None: no data)."""
    store = runtime.store
    org = store.organization.id
    found = next((p for p in store.points(org, device_id) if p.key == point), None)
    if found is None:
        raise NotFound(f"no point {point} on {device_id}")
    length, bucket = RANGES.get(span, RANGES["24h"])
    end = now_ms()
    buckets = store.aggregate(org, found.id, end - length * 1000, end + 1, bucket, "avg")
    return {
        "point": found.key,
        "unit": found.unit,
        "range": span,
        "start": (end - length * 1000) / 1000,
        "end": end / 1000,
        "t": [b.start_ms / 1000 for b in buckets],
        "v": [b.value for b in buckets],
    }


async def _driver(runtime: Runtime, device_id: str) -> tuple[Device, DeviceDriver]:
    device = await asyncio.to_thread(runtime.store.device, runtime.store.organization.id, device_id)
    driver = runtime.driver_of(device)
    if driver is None:
        raise CommandRefused(f"Devices of type {device.type} take no commands.")
    return device, driver


async def command(runtime: Runtime, device_id: str, body: dict[str, Any], actor: str) -> str:
    """Run a driver command other than a write; returns what happened, in words."""
    device, driver = await _driver(runtime, device_id)
    await driver.command(device.id, body, actor)
    return "The configuration is reloaded; polling resumes within seconds."


async def write(runtime: Runtime, device_id: str, form: dict[str, Any], actor: str) -> str:
    """Write a point through the device's driver; returns what happened, in words."""
    device, driver = await _driver(runtime, device_id)
    value = _value(str(form.get("value", "")))
    result = await driver.command(
        device.id, {"command": "write", "point": form.get("point"), "value": value}, actor
    )
    verdict = "confirmed by read-back" if result.get("confirmed") else "NOT confirmed"
    return f"Wrote {form.get('point')} = {value}; read back {result.get('read_back')} ({verdict})."


def _value(text: str) -> float | bool | str:
    lowered = text.strip().lower()
    if lowered in ("on", "true"):
        return True
    if lowered in ("off", "false"):
        return False
    try:
        return float(lowered)
    except ValueError:
        raise CommandRefused(f"{text!r} is not a number (or on / off).") from None


class DevicesController(Controller):
    """/devices and a device's page."""

    path = "/devices"

    @get("/")
    async def list_devices(
        self,
        request: Request,
        runtime: NamedDependency[Runtime],
        status: FromQuery[str] = "",
        type: FromQuery[str] = "",
        q: FromQuery[str] = "",
        site: FromQuery[str] = "",
    ) -> Any:
        """Devices, filtered by status, type, site and a text."""
        found = await asyncio.to_thread(device_list, runtime, status, type, q, site)
        return pages.page(request, "devices", found)

    @get("/{device_id:str}")
    async def device_page(
        self,
        request: Request,
        runtime: NamedDependency[Runtime],
        device_id: FromPath[str],
        point: FromQuery[str] = "",
        range: FromQuery[str] = "24h",
    ) -> Any:
        """A device: live values, chart, diagnostics, commands."""
        found = await asyncio.to_thread(device_context, runtime, device_id, point, range)
        return pages.page(request, "device", {**found, "form": {}, "error": None})

    @get("/{device_id:str}/series")
    async def device_series(
        self,
        runtime: NamedDependency[Runtime],
        device_id: FromPath[str],
        point: FromQuery[str],
        range: FromQuery[str] = "24h",
    ) -> dict[str, Any]:
        """The chart's data as JSON."""
        return await asyncio.to_thread(series, runtime, device_id, point, range)

    @post("/{device_id:str}/write", opt=TECH)
    async def write_point(
        self, request: Request, runtime: NamedDependency[Runtime], device_id: FromPath[str]
    ) -> Any:
        """Write a point, once confirmed; a refusal keeps the form as typed."""
        form = dict(await request.form())
        back = f"/devices/{device_id}"
        if not pages.confirmed(form):
            return pages.confirm(
                request,
                f"Write {form.get('value')} to {form.get('point')}?",
                f"{back}/write",
                "Yes, write it",
                form,
                back,
                danger=True,
            )
        try:
            said = await write(runtime, device_id, form, sessions.of(request).user.username)
        except CommandRefused as error:
            found = await asyncio.to_thread(device_context, runtime, device_id, "", "24h")
            return pages.page(request, "device", {**found, "form": form, "error": str(error)}, 422)
        return pages.done(back, said)

    @post("/{device_id:str}/reload", opt=TECH)
    async def reload(
        self, request: Request, runtime: NamedDependency[Runtime], device_id: FromPath[str]
    ) -> Any:
        """Ask the driver to re-read the device's configuration, once confirmed."""
        form = dict(await request.form())
        back = f"/devices/{device_id}"
        if not pages.confirmed(form):
            return pages.confirm(
                request,
                "Reload the configuration of this device? Its bus is reconnected.",
                f"{back}/reload",
                "Yes, reload",
                form,
                back,
            )
        said = await command(
            runtime, device_id, {"command": "refresh_config"}, sessions.of(request).user.username
        )
        return pages.done(back, said)

    @post("/{device_id:str}/pin", opt=TECH)
    async def pin(
        self, request: Request, runtime: NamedDependency[Runtime], device_id: FromPath[str]
    ) -> Any:
        """Pin a point to the overview, or unpin it."""
        form = await request.form()
        on = form.get("on") == "1"
        await asyncio.to_thread(
            runtime.store.pin_point,
            runtime.store.organization.id,
            int(form.get("point_id", "0") or 0),
            on,
        )
        return pages.done(f"/devices/{device_id}", "Pinned to the overview." if on else "Unpinned.")
