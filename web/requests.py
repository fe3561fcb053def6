"""Request ids: `req_` + ULID on every response's `X-Request-Id` and in every log line.

Handlers and guards that want headers on the response whatever its outcome
(rate-limit counters, for one) put them in `scope["state"]["headers"]`.
"""

from __future__ import annotations

import time

from litestar.types import ASGIApp, Message, Receive, Scope, Send

from edge import ids
from edge.logs import REQUEST_ID


def request_id_middleware(app: ASGIApp) -> ASGIApp:
    """Give each HTTP request an id, for its logs, its error body and its response header."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        request_id = ids.new_id("req")
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        state["started"] = time.perf_counter()
        extra: dict[str, str] = state.setdefault("headers", {})
        token = REQUEST_ID.set(request_id)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                headers += [(k.lower().encode(), v.encode()) for k, v in extra.items()]
                message["headers"] = headers
            await send(message)

        try:
            await app(scope, receive, send_with_id)
        finally:
            REQUEST_ID.reset(token)

    return middleware
