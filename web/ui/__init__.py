"""The technicians' LAN UI: server-rendered pages and htmx fragments over the runtime.

Templates are Jinja2 (`templates/<page>/page.html` and `_fragment.html`); the
static files (`static/`) are our one stylesheet and script plus vendored htmx
and uPlot (versions and licences in `static/vendor/VENDORED.md`). Nothing is
loaded from another host: the gateway is often offline.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Final

from litestar import Request, Response, Router
from litestar.datastructures import CacheControlHeader
from litestar.exceptions import HTTPException
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.template import TemplateConfig

from edge.runtime import CommandRefused
from edge.store import Conflict, NotFound, Refused
from web.ui import pages, sessions
from web.ui.admin import SettingsController
from web.ui.alarms import AlarmsController, RulesController
from web.ui.auth import AuthController, SignInThrottle
from web.ui.devices import DevicesController
from web.ui.nearby import NearbyController
from web.ui.overview import OverviewController
from web.ui.service import ServiceController
from web.ui.sync import BacklogHistory, SyncController
from web.ui.wizard import WizardController

HERE: Final = Path(__file__).parent
STATIC: Final = HERE / "static"
# Static files change only with a new version of the gateway.
STATIC_MAX_AGE_S: Final = 3600

log = logging.getLogger(__name__)

CONTROLLERS = (
    AuthController,
    OverviewController,
    WizardController,
    DevicesController,
    AlarmsController,
    RulesController,
    SyncController,
    SettingsController,
    ServiceController,
    NearbyController,
)


def _engine(engine: JinjaTemplateEngine) -> None:
    engine.engine.filters.update(pages.FILTERS)
    engine.engine.globals.update(pages.GLOBALS)


def templates() -> TemplateConfig[JinjaTemplateEngine]:
    """Jinja2 over the UI's templates, autoescaped, with the UI's filters."""
    return TemplateConfig(
        directory=HERE / "templates", engine=JinjaTemplateEngine, engine_callback=_engine
    )


def _sign_in(request: Request, exc: Exception) -> Response[Any]:
    return pages.to_sign_in(request)


def _forbidden(request: Request, exc: Exception) -> Response[Any]:
    return pages.failed(request, 403, "Not allowed", str(exc))


def _stale_form(request: Request, exc: Exception) -> Response[Any]:
    assert isinstance(exc, sessions.StaleForm)
    return pages.stale_form(request, str(exc), exc.current)


def _not_found(request: Request, exc: Exception) -> Response[Any]:
    return pages.failed(request, 404, "Not found", f"{exc}. It may have been deleted.")


def _refused(request: Request, exc: Exception) -> Response[Any]:
    return pages.failed(request, 422, "Not done", str(exc))


def http_error(request: Request, exc: Exception) -> Response[Any]:
    """An HTTP error (no such page, wrong method) as a page, for a browser."""
    assert isinstance(exc, HTTPException)
    return pages.failed(request, exc.status_code, "Cannot show this", str(exc.detail))


def _unexpected(request: Request, exc: Exception) -> Response[Any]:
    log.exception("unexpected error serving %s %s", request.method, request.url.path)
    return pages.failed(
        request,
        500,
        "Something went wrong",
        "The gateway could not do this; the log has the details.",
    )


def router() -> Router:
    """Every UI page behind the session guard, with error pages instead of JSON."""
    return Router(
        path="/",
        route_handlers=list(CONTROLLERS),
        guards=[sessions.guard],
        exception_handlers={
            sessions.SignInRequired: _sign_in,
            sessions.StaleForm: _stale_form,
            sessions.Forbidden: _forbidden,
            NotFound: _not_found,
            Refused: _refused,
            Conflict: _refused,
            CommandRefused: _refused,
            ValueError: _refused,
            HTTPException: http_error,
            Exception: _unexpected,
        },
        include_in_schema=False,
    )


def static() -> Router:
    """The stylesheet, script and vendored libraries, cached for an hour."""
    return create_static_files_router(
        path="/static",
        directories=[STATIC],
        include_in_schema=False,
        cache_control=CacheControlHeader(max_age=STATIC_MAX_AGE_S),
    )


__all__ = ["BacklogHistory", "SignInThrottle", "http_error", "router", "static", "templates"]
