"""The two dialects of one API: Sepolo's camelCase under /api/v1 and SGT's snake_case under /v1.

Handlers build snake_case data and call `Dialect.one` or `Dialect.page`; the
dialect renames keys and wraps the data in its own envelope. Request bodies
and query parameters go the other way through `Dialect.inbound`.
"""

from __future__ import annotations

import re
import socket
import time
from dataclasses import dataclass
from typing import Any, Final

from litestar import Request

SERVED_BY: Final = socket.gethostname()
_CAMEL = re.compile(r"_([a-z0-9])")
_SNAKE = re.compile(r"(?<=[a-z0-9])([A-Z])")


def camel(name: str) -> str:
    """`device_id` -> `deviceId`."""
    return _CAMEL.sub(lambda m: m[1].upper(), name)


def snake(name: str) -> str:
    """`deviceId` -> `device_id`."""
    return _SNAKE.sub(lambda m: "_" + m[1].lower(), name)


def _rename(value: Any, rename: Any) -> Any:
    if isinstance(value, dict):
        return {
            rename(k) if isinstance(k, str) else k: _rename(v, rename) for k, v in value.items()
        }
    if isinstance(value, list):
        return [_rename(v, rename) for v in value]
    return value


@dataclass(frozen=True, slots=True)
class Dialect:
    """How one base path spells names and wraps responses."""

    name: str
    prefix: str
    camel_case: bool
    page_size_param: str

    def outbound(self, data: Any) -> Any:
        """snake_case data in this dialect's spelling."""
        return _rename(data, camel) if self.camel_case else data

    def inbound(self, data: Any) -> Any:
        """This dialect's spelling back to snake_case."""
        return _rename(data, snake) if self.camel_case else data

    def _meta(self, request: Request) -> dict[str, Any]:
        started = request.scope.get("state", {}).get("started", time.perf_counter())
        return {
            "request_id": request.scope.get("state", {}).get("request_id"),
            "served_by": SERVED_BY,
            "took_ms": round((time.perf_counter() - started) * 1000),
        }

    def one(self, request: Request, item: dict[str, Any]) -> dict[str, Any]:
        """A single object: bare for Sepolo, `{data, meta}` for SGT."""
        if self.camel_case:
            return self.outbound(item)
        return {"data": item, "meta": self._meta(request)}

    def page(
        self, request: Request, items: list[dict[str, Any]], next_cursor: str | None, limit: int
    ) -> dict[str, Any]:
        """A list page in this dialect's envelope."""
        if self.camel_case:
            return {
                "data": self.outbound(items),
                "nextCursor": next_cursor,
                "hasMore": next_cursor is not None,
            }
        meta = self._meta(request)
        meta["pagination"] = {
            "limit": limit,
            "next": next_cursor,
            "has_more": next_cursor is not None,
        }
        return {"data": items, "meta": meta}


SEPOLO: Final = Dialect("sepolo", "/api/v1", camel_case=True, page_size_param="pageSize")
SGT: Final = Dialect("sgt", "/v1", camel_case=False, page_size_param="limit")
DIALECTS: Final = (SEPOLO, SGT)
