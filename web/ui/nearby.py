"""Adopting a BLE sensor: the sensors the gateway's radios hear nearby (family, model, RSSI,
last values, encrypted or not, adopted or not), an active scan on demand, and adoption
after a confirmation, which stores the device as `POST /devices` with `type: "ble"` does.

The radios are the runtime's `discovery` sources, which the BLE driver fills, so the UI
never imports a driver.
"""

from __future__ import annotations

import asyncio
from typing import Any, Final

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency

from edge.runtime import Runtime
from edge.store import Conflict, NotFound, Refused
from web.ui import data, pages

TECH: Final = {"role": "technician"}
SCAN_S: Final = 10.0


def heard(runtime: Runtime) -> dict[str, Any]:
    """Every sensor heard nearby, by address, and whether any radio listens."""
    sensors = sorted(
        (n for source in runtime.discovery for n in source.nearby_sensors()),
        key=lambda n: n["address"],
    )
    return {
        "listening": bool(runtime.discovery) and runtime.settings.ble.enabled,
        "sensors": sensors,
        "now": data.now(),
        "error": None,
    }


def body_of(form: dict[str, Any]) -> dict[str, Any]:
    """The device body (as POST /devices takes it) an adoption form describes."""
    connection = {
        "address": str(form.get("address", "")).strip(),
        "family": str(form.get("family", "")).strip(),
    }
    key = str(form.get("bind_key", "")).strip()
    if key:
        connection["bind_key"] = key
    return {"name": str(form.get("name", "")).strip(), "type": "ble", "connection": connection}


def adopt(runtime: Runtime, form: dict[str, Any]) -> str:
    """Store the sensor as a device; returns its id (Refused names what is wrong)."""
    body = body_of(form)
    if not body["name"]:
        raise Refused("name: give the sensor a name")
    add = runtime.device_types.get("ble")
    if add is None:
        raise Refused("this gateway does not listen to BLE sensors")
    # A confirmation sent twice (a dropped answer, a second press) gets the driver's Conflict:
    # one device per sensor.
    try:
        return add(runtime.store, runtime.store.organization.id, body).id
    except (ValueError, KeyError, TypeError, Conflict, NotFound) as error:
        raise Refused(str(error).strip("'\"")) from None


class NearbyController(Controller):
    """/devices/new/ble: sensors nearby, and adopting one."""

    path = "/devices/new/ble"

    @get("/", opt=TECH)
    async def list_nearby(self, request: Request, runtime: NamedDependency[Runtime]) -> Any:
        """The sensors heard nearby, adopted ones linked to their device."""
        return pages.page(request, "nearby", heard(runtime))

    @post("/scan", opt=TECH)
    async def scan(self, request: Request, runtime: NamedDependency[Runtime]) -> Any:
        """Listen actively for a while, so sensors that answer only scan requests show up."""
        radios = runtime.discovery if runtime.settings.ble.enabled else []
        took = max((source.scan(SCAN_S) for source in radios), default=0.0)
        said = f"Scanning actively for {took:.0f} s." if took else "No radio is listening."
        return pages.done("/devices/new/ble", said)

    @post("/", opt=TECH)
    async def adopt_sensor(self, request: Request, runtime: NamedDependency[Runtime]) -> Any:
        """Adopt a sensor, once confirmed; its device's page comes next."""
        form = dict(await request.form())
        if not pages.confirmed(form):
            what = f"{form.get('family', '')} sensor {form.get('address', '')}".strip()
            return pages.confirm(request, f"Adopt {what} as {form.get('name') or 'a device'}?",
                                 "/devices/new/ble", "Yes, adopt it", form,
                                 "/devices/new/ble")  # fmt: skip
        try:
            device_id = await asyncio.to_thread(adopt, runtime, form)
        except Refused as error:
            return pages.page(request, "nearby", {**heard(runtime), "error": str(error)}, 422)
        return pages.done(f"/devices/{device_id}", "Sensor adopted; readings are kept as heard.")
