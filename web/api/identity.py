"""`/me`: the calling key, its organization, scopes, rate limit and data boundaries."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get
from litestar.di import NamedDependency

from edge.runtime import Runtime
from web.api import params
from web.api.auth import Caller
from web.api.dialect import Dialect


class IdentityController(Controller):
    """Who the caller is, as seed 000's `/me` shows it."""

    path = "/me"
    tags = ["identity"]

    @get("/", opt={"scope": "public_api.read"})
    async def me(
        self, request: Request, runtime: NamedDependency[Runtime], dialect: NamedDependency[Dialect]
    ) -> dict[str, Any]:
        """The integration identity."""
        caller: Caller = params.caller(request)
        api = runtime.settings.api
        return dialect.one(
            request,
            {
                "organization_id": caller.org_id,
                "organization_name": caller.organization.name,
                "client_id": caller.key.id,
                "client_name": caller.key.name,
                "scopes": caller.key.scopes,
                "version": "v1",
                "rate_limit": {"requests_per_minute": api.read_per_min, "requests_per_day": None},
                "allowed_group_ids": caller.key.allowed_group_ids,
                "allowed_customer_ids": caller.key.allowed_customer_ids,
            },
        )
