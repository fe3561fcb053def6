"""The OpenAPI document as clients should read it: every API failure in the error body's shape."""

from __future__ import annotations

from typing import Final

from litestar.openapi.spec import (
    OpenAPI,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Schema,
)

from web.api.errors import CODES, is_api_path

ERROR_BODY: Final = Schema(
    type=OpenAPIType.OBJECT,
    required=["error"],
    properties={
        "error": Schema(
            type=OpenAPIType.OBJECT,
            required=["code", "message", "details", "request_id"],
            properties={
                "code": Schema(type=OpenAPIType.STRING),
                "message": Schema(type=OpenAPIType.STRING),
                "details": Schema(type=OpenAPIType.OBJECT),
                "request_id": Schema(type=[OpenAPIType.STRING, OpenAPIType.NULL]),
            },
        )
    },
)
# What any API operation may answer besides its own successes.
COMMON_FAILURES: Final = (400, 401, 403, 404, 405, 409, 413, 422, 429, 500)


def with_error_bodies(document: OpenAPI) -> OpenAPI:
    """Document the error body for every failure status of every API operation."""
    for path, item in (document.paths or {}).items():
        if not is_api_path(path + "/"):
            continue
        for method in ("get", "post", "patch", "delete", "put"):
            operation = getattr(item, method, None)
            if operation is None:
                continue
            responses = operation.responses or {}
            for status in COMMON_FAILURES:
                responses[str(status)] = OpenAPIResponse(
                    description=CODES.get(status, "error").replace("_", " "),
                    content={"application/json": OpenAPIMediaType(schema=ERROR_BODY)},
                )
            operation.responses = responses
    return document
