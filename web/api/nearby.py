"""Discovery: `/devices/nearby` lists the sensors the gateway's radios hear, adopted or not.

Adopting one is `POST /devices` with its `address` and `family` (and a
`bind_key` for encrypted adverts); `POST /devices/nearby/scan` listens
actively for a while, so sensors that only answer scan requests show up.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromQuery, QueryParameter

from edge.runtime import Runtime
from web.api import params, resources
from web.api.dialect import Dialect
from web.api.errors import ApiError

ADDRESS = re.compile(r"^[0-9A-F]{2}(:[0-9A-F]{2}){5}$")
Seconds = Annotated[float | None, QueryParameter(ge=1, le=120, required=False)]


def _cursor(address: str) -> str:
    return base64.urlsafe_b64encode(address.encode()).rstrip(b"=").decode()


def _after(cursor: str) -> str:
    padded = cursor + "=" * (-len(cursor) % 4)
    try:
        address = base64.b64decode(padded, altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        address = ""
    if not ADDRESS.match(address):
        raise ApiError(400, "The cursor is not valid.")
    return address


def _entry(item: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in item.items() if k != "last_seen_ms"}
    out["last_seen"] = resources.iso(item["last_seen_ms"])
    return out


class NearbyController(Controller):
    """Sensors heard nearby: address, family, model, RSSI, last values, adopted device."""

    path = "/devices/nearby"
    tags = ["devices"]

    @get("/", opt={"scope": "devices.read"})
    async def list_nearby(
        self,
        request: Request,
        runtime: NamedDependency[Runtime],
        dialect: NamedDependency[Dialect],
        limit: params.PageSize = None,
        page_size: params.CamelSize = None,
        cursor: FromQuery[str | None] = None,
        family: FromQuery[str | None] = None,
    ) -> dict[str, Any]:
        """By address; `family` narrows to one sensor family."""
        size = params.page_size(dialect, limit, page_size)
        after = _after(cursor) if cursor else ""
        heard = [n for source in runtime.discovery for n in source.nearby_sensors()]
        items = sorted((n for n in heard if n["address"] > after
                        and (family is None or n["family"] == family)),
                       key=lambda n: n["address"])[: size + 1]  # fmt: skip
        more = len(items) > size
        items = items[:size]
        next_cursor = _cursor(items[-1]["address"]) if more else None
        return dialect.page(request, [_entry(i) for i in items], next_cursor, size)

    @post("/scan", opt={"scope": "devices.write"}, status_code=202)
    async def scan(
        self,
        request: Request,
        runtime: NamedDependency[Runtime],
        dialect: NamedDependency[Dialect],
        seconds: Seconds = None,
    ) -> dict[str, Any]:
        """Scan actively for `seconds` (default 10), to hear names and scan responses."""
        if not runtime.discovery:
            raise ApiError(503, "No radio is listening for sensors.")
        took = max(source.scan(seconds or 10.0) for source in runtime.discovery)
        return dialect.one(request, {"scanning_s": took})
