"""Provisioning (seed 001): a one-time registration token, exchanged by the device for its key.

The key a device gets may only ingest that device's telemetry.
"""

from __future__ import annotations

import asyncio
from typing import Any, Final

from litestar import Controller, Request, Response, post
from litestar.di import NamedDependency

from edge.devices import add_http_device
from edge.models import now_ms
from edge.runtime import Runtime
from web.api import params, resources
from web.api.dialect import Dialect
from web.api.errors import ApiError

# A token that is not used within a day must be issued again, as seed 001's example shows.
TOKEN_LIFETIME_S: Final = 86_400
DEVICE_SCOPES: Final = ["telemetry.write"]


class ProvisioningController(Controller):
    """`/devices/registration/tokens` and `/devices/provision`."""

    path = "/devices"
    tags = ["provisioning"]

    @post("/registration/tokens", opt={"scope": "devices.write"})
    async def create_token(
        self, request: Request, runtime: NamedDependency[Runtime], dialect: NamedDependency[Dialect]
    ) -> Response[dict[str, Any]]:
        """Register a device that will push its readings, and issue its one-time token."""
        body = params.json_body(dialect, await request.body())
        name = body.get("device_name") or body.get("name")
        if not isinstance(name, str) or not name.strip():
            raise ApiError(422, "deviceName is required.", {"field": "device_name"})
        lifetime = body.get("expires_in_seconds", TOKEN_LIFETIME_S)
        if not isinstance(lifetime, int) or not 60 <= lifetime <= 30 * 86_400:
            raise ApiError(422, "expiresInSeconds must be 60 s to 30 days.",
                           {"field": "expires_in_seconds"})  # fmt: skip
        org = params.caller(request).org_id
        spec = {"name": name.strip(), "site_id": body.get("site_id"), "points": body.get("points")}
        device = await asyncio.to_thread(add_http_device, runtime.store, org, spec)
        expires = now_ms() + lifetime * 1000
        token = await asyncio.to_thread(
            runtime.store.create_registration_token, org, device.id, expires
        )
        endpoint = str(request.base_url).rstrip("/") + dialect.prefix + "/devices/provision"
        out = {
            "token": token,
            "device_id": device.id,
            "device_name": device.name,
            "provision_endpoint": endpoint,
            "expires_at": resources.iso(expires),
        }
        return Response(dialect.one(request, out), status_code=201)

    @post("/provision", opt={"public": True})
    async def provision(
        self, request: Request, runtime: NamedDependency[Runtime], dialect: NamedDependency[Dialect]
    ) -> Response[dict[str, Any]]:
        """Exchange a registration token (once) for the device's own API key."""
        body = params.json_body(dialect, await request.body())
        token = body.get("token")
        if not isinstance(token, str) or not token:
            raise ApiError(400, "token is required.", {"field": "token"})
        found = await asyncio.to_thread(runtime.store.provision, token, DEVICE_SCOPES)
        if found is None:
            raise ApiError(401, "The registration token is unknown, used or expired.")
        key, secret = found
        ingest = str(request.base_url).rstrip("/") + dialect.prefix + "/telemetry/ingest"
        out = {"device_id": key.device_id, "api_key": secret, "scopes": key.scopes,
               "ingest_endpoint": ingest}  # fmt: skip
        return Response(dialect.one(request, out), status_code=201)
