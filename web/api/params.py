"""What every API handler reads from a request: the caller, the page size, the JSON body."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Request
from litestar.params import QueryParameter

from web.api.auth import Caller
from web.api.dialect import Dialect
from web.api.errors import ApiError

# SGT's `limit` and Sepolo's `pageSize`: both declared, so the OpenAPI document shows both.
PageSize = Annotated[int | None, QueryParameter(ge=1, le=500, required=False)]
CamelSize = Annotated[int | None, QueryParameter(name="pageSize", ge=1, le=500, required=False)]
DEFAULT_PAGE = 100


def caller(request: Request) -> Caller:
    """The key the auth guard accepted for this request."""
    return request.scope["state"]["caller"]


def page_size(dialect: Dialect, limit: int | None, camel: int | None) -> int:
    """The page size in the dialect's own parameter, else the other one, else the default."""
    return (camel if dialect.camel_case else limit) or limit or camel or DEFAULT_PAGE


def if_match(request: Request) -> int | None:
    """The version an If-Match ETag names (None without one, or for `*`); 400 if not ours."""
    header = request.headers.get("if-match")
    if header is None or header.strip() == "*":
        return None
    try:
        return int(header.strip().strip('"').rsplit(".", 1)[1])
    except (IndexError, ValueError):
        raise ApiError(400, "If-Match must be an ETag this API returned.") from None


def json_body(dialect: Dialect, raw: bytes) -> dict[str, Any]:
    """A JSON object body in snake_case; 400 for anything else."""
    try:
        body = msgspec.json.decode(raw) if raw else None
    except msgspec.DecodeError:
        raise ApiError(400, "The body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise ApiError(400, "The body must be a JSON object.")
    return dialect.inbound(body)
