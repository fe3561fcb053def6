"""The upstream's `/v1` API as the agent calls it: auth, tenant, User-Agent, gzip bodies."""

from __future__ import annotations

import email.utils
import gzip
import time
from datetime import datetime
from typing import Any, Final

import httpx
import msgspec

from edge import __version__
from edge.settings import SyncSettings

# Longest Retry-After honoured: an upstream asking for more is asked again after this.
MAX_RETRY_AFTER_S: Final = 3600.0
GZIP_LEVEL: Final = 6


class Unreachable(Exception):
    """No usable answer: the connection failed or timed out, or the upstream is failing
    (5xx), busy (429) or refuses the gateway as a whole (a bad key, a wrong URL)."""

    def __init__(self, message: str, retry_after_s: float | None = None):
        super().__init__(message)
        self.retry_after_s = retry_after_s


class Upstream:
    """One HTTP/1.1 connection pool to the upstream, shared by pushes and pulls."""

    def __init__(self, settings: SyncSettings, gateway_id: str) -> None:
        headers = {
            "User-Agent": f"edge-gateway/{__version__} ({gateway_id})",
            "Authorization": f"Bearer {settings.api_key}",
            "Accept": "application/json",
        }
        if settings.tenant:
            headers["X-SGT-Tenant"] = settings.tenant
        self.bytes_sent = 0
        self._client = httpx.AsyncClient(
            base_url=settings.upstream_url.rstrip("/"),
            headers=headers,
            timeout=settings.timeout_s,
            limits=httpx.Limits(max_connections=settings.in_flight + 2),
        )

    async def close(self) -> None:
        await self._client.aclose()

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        compress: bool = False,
    ) -> httpx.Response:
        """Send one request; Unreachable when there is no answer or it says "try again later"
        (429, 5xx). Other statuses are the caller's to judge."""
        content = None
        extra = dict(headers or {})
        if body is not None:
            content = msgspec.json.encode(body)
            extra["Content-Type"] = "application/json"
            if compress:
                content = gzip.compress(content, GZIP_LEVEL, mtime=0)
                extra["Content-Encoding"] = "gzip"
            self.bytes_sent += len(content)
        try:
            response = await self._client.request(
                method, path, content=content, params=params, headers=extra
            )
        except httpx.HTTPError as error:
            raise Unreachable(f"{method} {path}: {type(error).__name__}: {error}") from None
        if response.status_code == 429:
            raise Unreachable(f"{method} {path}: 429 rate limited", _retry_after(response.headers))
        if response.status_code >= 500 or response.status_code == 408:
            raise Unreachable(f"{method} {path}: {response.status_code} {message(response)}")
        return response


def epoch_ms(text: str) -> int:
    """An ISO-8601 time from the upstream as epoch milliseconds."""
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


def _retry_after(headers: httpx.Headers) -> float | None:
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        when = email.utils.parsedate_to_datetime(value)
        if when is None:
            return None
        seconds = when.timestamp() - time.time()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


def message(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"]["message"])
    except Exception:
        return response.text[:200]


def error_body(response: httpx.Response) -> Any:
    """The upstream's error body (JSON if it is), to keep beside what it refused."""
    try:
        return response.json()
    except ValueError:
        return {"status": response.status_code, "text": response.text[:2000]}
