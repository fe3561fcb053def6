"""Adding a device: the form, "test connection" (reads every point once and shows the values,
nothing stored), then saving it, after a confirmation.

Device types and the probe come from the runtime, which the drivers fill, so
the wizard offers what the gateway can poll. A SunSpec device is discovered
on test and again on save, so what is stored is what the device declares.
"""

from __future__ import annotations

import asyncio
from typing import Any, Final

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency

from edge.runtime import Runtime
from edge.store import Conflict, NotFound, Refused
from web.ui import pages

TECH: Final = {"role": "technician"}
DEFAULTS: Final = {
    "type": "modbus_tcp",
    "port": "502",
    "unit_id": "1",
    "timeout_s": "1",
    "source": "profile",
    "baudrate": "9600",
    "parity": "N",
}
TRANSPORT_NAMES: Final = {
    "modbus_tcp": "Modbus TCP",
    "modbus_rtu_over_tcp": "Modbus RTU over TCP (serial device server)",
    "modbus_rtu": "Modbus RTU (serial port on this gateway)",
}


class FormError(ValueError):
    """A field of the wizard's form is wrong; the message names it."""


def body_of(form: dict[str, Any]) -> dict[str, Any]:
    """The device body (as POST /devices takes it) the form describes."""
    kind = str(form.get("type", ""))
    try:
        connection: dict[str, Any] = {
            "unit_id": int(form.get("unit_id") or 1),
            "timeout_s": float(form.get("timeout_s") or 1),
        }
        if kind == "modbus_rtu":
            connection |= {
                "port": str(form.get("port", "")).strip(),
                "baudrate": int(form.get("baudrate") or 9600),
                "parity": str(form.get("parity") or "N"),
            }
        else:
            connection |= {
                "host": str(form.get("host", "")).strip(),
                "port": int(form.get("port") or 502),
            }
    except ValueError:
        raise FormError("unit id, port, baud rate and timeout must be numbers") from None
    body: dict[str, Any] = {
        "name": str(form.get("name", "")).strip(),
        "type": kind,
        "connection": connection,
    }
    if form.get("source") == "sunspec":
        body["discover"] = "sunspec"
    else:
        body["profile"] = form.get("profile") or None
    tags = [t.strip() for t in str(form.get("tags", "")).split(",") if t.strip()]
    if tags:
        body["tags"] = tags
    return body


def context(runtime: Runtime, form: dict[str, Any], **more: Any) -> dict[str, Any]:
    """The wizard's form with what was typed, the choices, and any result."""
    kinds = [k for k in TRANSPORT_NAMES if k in runtime.probes]
    return {
        "form": {**DEFAULTS, **form},
        "kinds": [(k, TRANSPORT_NAMES[k]) for k in kinds],
        "profiles": runtime.profiles(),
        "result": None,
        "error": None,
        **more,
    }


async def test(runtime: Runtime, form: dict[str, Any]) -> dict[str, Any]:
    """Try the device the form describes; the probe's answer, or an error in words."""
    body = body_of(form)
    probe = runtime.probes.get(body["type"])
    if probe is None:
        raise FormError(f"choose a device type ({', '.join(TRANSPORT_NAMES)})")
    try:
        return await probe(body)
    except (ValueError, KeyError) as error:
        raise FormError(str(error).strip("'\"")) from None


async def save(runtime: Runtime, form: dict[str, Any]) -> str:
    """Store the device (a SunSpec one with the points discovered now); returns its id."""
    body = body_of(form)
    if not body["name"]:
        raise FormError("name: give the device a name")
    if body.pop("discover", None):
        found = await test(runtime, form)
        if not found["ok"]:
            raise FormError(f"SunSpec discovery failed: {found['error']}")
        body["points"] = found["points"]
    add = runtime.device_types.get(body["type"])
    if add is None:
        raise FormError("choose a device type")
    try:
        device = await asyncio.to_thread(add, runtime.store, runtime.store.organization.id, body)
    except (ValueError, KeyError, TypeError, Conflict, NotFound, Refused) as error:
        raise FormError(str(error).strip("'\"")) from None
    return device.id


class WizardController(Controller):
    """/devices/new: add a device."""

    path = "/devices/new"

    @get("/", opt=TECH)
    async def form(self, request: Request, runtime: NamedDependency[Runtime]) -> Any:
        """The empty form."""
        return pages.page(request, "wizard", context(runtime, {}))

    @post("/test", opt=TECH)
    async def test_connection(self, request: Request, runtime: NamedDependency[Runtime]) -> Any:
        """Connect and read every point once; the form stays as typed."""
        form = dict(await request.form())
        try:
            result = await test(runtime, form)
        except FormError as error:
            return pages.page(request, "wizard", context(runtime, form, error=str(error)), 422)
        return pages.page(request, "wizard", context(runtime, form, result=result))

    @post("/", opt=TECH)
    async def add(self, request: Request, runtime: NamedDependency[Runtime]) -> Any:
        """Save the device, once confirmed; its page comes next."""
        form = dict(await request.form())
        if not pages.confirmed(form):
            return pages.confirm(
                request,
                f"Add {form.get('name') or 'this device'} and start polling it?",
                "/devices/new",
                "Yes, add it",
                form,
                "/devices/new",
            )
        try:
            device_id = await save(runtime, form)
        except FormError as error:
            return pages.page(request, "wizard", context(runtime, form, error=str(error)), 422)
        return pages.done(f"/devices/{device_id}", "Device added; it is polled within 5 s.")
