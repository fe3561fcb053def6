"""The Litestar application: routes, dependencies, request ids and error handling."""

from __future__ import annotations

import logging
from typing import Any

from litestar import Litestar, Request, Response
from litestar.di import Provide
from litestar.exceptions import HTTPException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.types import ASGIApp

from edge import __version__
from edge.runtime import Runtime
from edge.signing import Signer
from web import api, metrics, ui
from web.api import errors
from web.api.auth import Authenticator
from web.api.schema import with_error_bodies
from web.api.telemetry import PointCache
from web.health import HealthController
from web.requests import request_id_middleware

log = logging.getLogger(__name__)


def _on_error(request: Request, exc: Exception) -> Response[Any]:
    if errors.is_api_path(request.url.path):
        return errors.handle(request, exc)
    if isinstance(exc, HTTPException):
        if "text/html" in request.headers.get("accept", ""):  # a browser: a page, not JSON
            return ui.http_error(request, exc)
        return Response({"status_code": exc.status_code, "detail": exc.detail},
                        status_code=exc.status_code)  # fmt: skip
    log.exception("unexpected error serving %s %s", request.method, request.url.path)
    return Response({"status_code": 500, "detail": "Internal Server Error"}, status_code=500)


def create_asgi(runtime: Runtime) -> ASGIApp:
    """The app as served: wrapped so that every response, routed or not, has a request id."""
    return request_id_middleware(create_app(runtime))


def create_app(runtime: Runtime) -> Litestar:
    """The gateway's web app, bound to a running gateway."""
    registry = metrics.registry_for(runtime)
    history = ui.BacklogHistory(runtime)
    app = Litestar(
        route_handlers=[HealthController, *api.routers(), ui.router(), ui.static()],
        dependencies={
            "runtime": Provide(lambda: runtime, use_cache=True, sync_to_thread=False),
            "registry": Provide(lambda: registry, use_cache=True, sync_to_thread=False),
        },
        exception_handlers={Exception: _on_error},
        template_config=ui.templates(),
        on_startup=[history.start],
        on_shutdown=[history.stop],
        # JSON only: a docs page would load its script from a CDN, and the gateway is offline.
        openapi_config=OpenAPIConfig(
            title="edge-gateway local cloud API",
            version=__version__,
            path="/api",
            render_plugins=[JsonRenderPlugin(path=["/schemas", "/v3/api-docs", "/openapi.json"])],
        ),
        # The gateway configures logging once, from its settings.
        logging_config=None,
    )
    with_error_bodies(app.openapi_schema)  # built once here, and served as patched
    app.state.runtime = runtime
    app.state.authenticator = Authenticator(runtime)
    app.state.ingest_inflight = set()
    app.state.point_cache = PointCache()
    app.state.signer = Signer(runtime.settings.data_dir)
    app.state.backlog_history = history
    app.state.sign_in_throttle = ui.SignInThrottle()
    return app
