"""Who is calling: API keys (Bearer or X-Sepolo-Api-Key), tenant header, scopes, rate limits.

The guard runs before every API handler: no or unknown key -> 401, a tenant
header naming another organization or a missing scope -> 403, an empty
bucket -> 429 with Retry-After. It leaves the `Caller` in the request state.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Final

from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler

from edge.models import ApiKey, Boundary, Organization
from edge.runtime import Runtime
from web.api.errors import ApiError
from web.api.limits import RateLimiter

# A key's last use is written at most this often: a write per request would cost more
# than the request.
TOUCH_EVERY_S: Final = 60.0
# Known keys are remembered this long; a revoked key stops working within it.
KEY_CACHE_S: Final = 5.0
ADMIN: Final = "admin"


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated API key and its organization."""

    key: ApiKey
    organization: Organization

    @property
    def org_id(self) -> str:
        return self.key.org_id

    @property
    def boundary(self) -> Boundary:
        """What of its organization the key may see: device queries go through this."""
        return self.key.boundary


class Authenticator:
    """Resolves keys (with a short cache) and records their last use."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self.limiter = RateLimiter(runtime.settings.api)
        self._cache: dict[str, tuple[float, ApiKey | None]] = {}
        self._touched: dict[str, float] = {}

    async def key(self, secret: str) -> ApiKey | None:
        now = time.monotonic()
        cached = self._cache.get(secret)
        if cached is not None and now - cached[0] < KEY_CACHE_S:
            return cached[1]
        key = await asyncio.to_thread(self._runtime.store.api_key, secret)
        if len(self._cache) > 10_000:  # unknown secrets must not grow it without bound
            self._cache.clear()
        self._cache[secret] = (now, key)
        return key

    async def touch(self, key: ApiKey) -> None:
        now = time.monotonic()
        if now - self._touched.get(key.id, -TOUCH_EVERY_S) < TOUCH_EVERY_S:
            return
        self._touched[key.id] = now
        await asyncio.to_thread(self._runtime.store.touch_api_key, key.id)


def _secret(connection: ASGIConnection) -> str | None:
    header = connection.headers.get("authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip() or None
    return connection.headers.get("x-sepolo-api-key") or None


async def guard(connection: ASGIConnection, handler: BaseRouteHandler) -> None:
    """Authenticate, check tenant and scope, and take from the rate bucket."""
    if handler.opt.get("public"):
        return  # the request carries its own credential (a registration token)
    auth: Authenticator = connection.app.state.authenticator
    runtime: Runtime = connection.app.state.runtime
    secret = _secret(connection)
    if secret is None:
        raise ApiError(401, "An API key is required (Authorization: Bearer or X-Sepolo-Api-Key).")
    key = await auth.key(secret)
    if key is None:
        raise ApiError(401, "The API key is not valid.")
    organization = await asyncio.to_thread(runtime.store.organization_of, key.org_id)
    tenant = connection.headers.get("x-sgt-tenant")
    if tenant is not None and tenant not in (organization.id, organization.name):
        raise ApiError(403, "X-SGT-Tenant does not match the key's organization.")
    needed = handler.opt.get("scope")
    if needed and needed not in key.scopes and ADMIN not in key.scopes:
        raise ApiError(403, f"The key lacks the scope {needed}.", {"required_scope": needed})
    bucket = auth.limiter.bucket_for(connection.scope["method"], handler.opt.get("ingest", False),
                                     handler.opt.get("report", False))  # fmt: skip
    verdict = auth.limiter.take(key.id, bucket)
    connection.scope["state"].setdefault("headers", {}).update(verdict.headers)
    if not verdict.allowed:
        raise ApiError(
            429,
            f"The {bucket.name} rate limit is exceeded; retry in {verdict.retry_after_s} s.",
            {"bucket": bucket.name, "retry_after_s": verdict.retry_after_s},
        )
    connection.scope["state"]["caller"] = Caller(key, organization)
    await auth.touch(key)
