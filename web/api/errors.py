"""The API's error body and status table (seed 002), for every failure on an API path.

`{"error": {"code", "message", "details", "request_id"}}`, never a traceback or
an HTML page. Handlers raise `ApiError`; framework errors (unknown route,
wrong method, bad body, oversize body) and store errors are mapped here.
"""

from __future__ import annotations

import logging
from typing import Any, Final

from litestar import Request, Response
from litestar.exceptions import (
    HTTPException,
    MethodNotAllowedException,
    NotFoundException,
    ValidationException,
)
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from edge.store import Conflict, InvalidCursor, NotFound, Refused

log = logging.getLogger(__name__)

CODES: Final = {
    400: "invalid_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_failed",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
}
API_PREFIXES: Final = ("/v1/", "/api/")


class ApiError(Exception):
    """A failure the API reports to the caller as its error body."""

    def __init__(
        self,
        status: int,
        message: str,
        details: dict[str, Any] | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code or CODES.get(status, "error")
        self.message = message
        self.details = details or {}
        self.headers = headers or {}


def error_response(request: Request, error: ApiError) -> Response[dict[str, Any]]:
    """The error body for `error`, with its status and headers."""
    request_id = request.scope.get("state", {}).get("request_id")
    body = {
        "error": {
            "code": error.code,
            "message": error.message,
            "details": error.details,
            "request_id": request_id,
        }
    }
    return Response(body, status_code=error.status, headers=error.headers)


def _framework(request: Request, exc: HTTPException) -> Response[Any]:
    status = exc.status_code
    if isinstance(exc, ValidationException):
        details = {"errors": exc.extra} if exc.extra else {}
        return error_response(request, ApiError(400, "The request is not valid.", details))
    if isinstance(exc, NotFoundException):
        return error_response(request, ApiError(404, "No such resource."))
    if isinstance(exc, MethodNotAllowedException):
        headers = {k: v for k, v in (exc.headers or {}).items() if k.lower() == "allow"}
        message = f"{request.method} is not allowed here."
        return error_response(request, ApiError(405, message, headers=headers))
    message = exc.detail if status < 500 else "The gateway could not complete the request."
    return error_response(request, ApiError(status, message, headers=exc.headers or {}))


# The store's refusals and their statuses (their messages are the caller's to read).
_STORE_ERRORS: tuple[tuple[type[Exception], int], ...] = ((NotFound, 404), (Conflict, 409),
                                                         (Refused, 422))  # fmt: skip


def _sentence(message: str) -> str:
    """A store message as a sentence, ids untouched (`capitalize` would lowercase them)."""
    return message[:1].upper() + message[1:] + "."


def handle(request: Request, exc: Exception) -> Response[Any]:
    """Map any exception raised while serving an API path to the error body."""
    if isinstance(exc, ApiError):
        return error_response(request, exc)
    for kind, status in _STORE_ERRORS:
        if isinstance(exc, kind):
            return error_response(request, ApiError(status, _sentence(str(exc))))
    if isinstance(exc, InvalidCursor):
        return error_response(
            request, ApiError(400, "The cursor is not valid.", {"param": "cursor"})
        )
    if isinstance(exc, HTTPException):
        return _framework(request, exc)
    log.exception("unexpected error serving %s %s", request.method, request.url.path)
    return error_response(
        request,
        ApiError(HTTP_500_INTERNAL_SERVER_ERROR, "The gateway could not complete the request."),
    )


def is_api_path(path: str) -> bool:
    """Paths whose errors use the API's body rather than a page."""
    return path.startswith(API_PREFIXES)
