"""Who is signed in to the UI: the session cookie, roles, and CSRF on every unsafe request.

The guard runs before every UI handler. No live session -> sign-in page (the
page asked for comes back after it); a role below the handler's `role` ->
403; a POST without the session's CSRF token (form field `_csrf` or header
`X-CSRF-Token`) -> 403. Sign-in and first-run forms, made before any session
exists, carry a token that must match a cookie of their own (double submit).
Cookies are HttpOnly and SameSite=Lax, so another site can neither read them
nor send them with a cross-site form post.
"""

from __future__ import annotations

import asyncio
import hmac
import secrets
from typing import Final

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie
from litestar.handlers import BaseRouteHandler

from edge import users
from edge.models import UserSession
from edge.runtime import Runtime

SESSION_COOKIE: Final = "edge_session"
PRE_COOKIE: Final = "edge_form"
CSRF_FIELD: Final = "_csrf"
CSRF_HEADER: Final = "x-csrf-token"
SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})


class SignInRequired(Exception):
    """No live session: the browser goes to the sign-in page."""


class Forbidden(Exception):
    """A role too low, or a form without its CSRF token; the message says which."""


class StaleForm(Forbidden):
    """A form without this session's CSRF token (say, from a page of an ended session)."""

    def __init__(self, message: str, current: str) -> None:
        super().__init__(message)
        self.current = current


def limits(runtime: Runtime) -> tuple[int, int]:
    """(lifetime, idle) of a session in ms, from the settings."""
    ui = runtime.settings.ui
    return ui.session_max_h * 3_600_000, ui.session_idle_min * 60_000


def session_cookie(token: str, runtime: Runtime) -> Cookie:
    """The cookie that carries a new session."""
    lifetime, _ = limits(runtime)
    return Cookie(
        key=SESSION_COOKIE,
        value=token,
        max_age=lifetime // 1000,
        path="/",
        httponly=True,
        samesite="lax",
    )


def cleared_cookie() -> Cookie:
    """Deletes the session cookie."""
    return Cookie(key=SESSION_COOKIE, value="", max_age=0, path="/", httponly=True, samesite="lax")


def pre_token(request: Request) -> tuple[str, Cookie | None]:
    """The sign-in form's token, and the cookie to set when the browser has none yet."""
    have = request.cookies.get(PRE_COOKIE)
    if have:
        return have, None
    token = secrets.token_urlsafe(24)
    return token, Cookie(key=PRE_COOKIE, value=token, path="/", httponly=True, samesite="lax")


def pre_token_ok(request: Request, sent: str | None) -> bool:
    """True if a sign-in form's token matches its cookie."""
    have = request.cookies.get(PRE_COOKIE) or ""
    return bool(have and sent) and hmac.compare_digest(have, sent or "")


async def current(connection: ASGIConnection) -> UserSession | None:
    """The live session the request's cookie names, if any."""
    token = connection.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    runtime: Runtime = connection.app.state.runtime
    _, idle = limits(runtime)
    return await asyncio.to_thread(runtime.store.session, token, idle)


def of(request: Request) -> UserSession:
    """The session the guard accepted for this request."""
    return request.scope["state"]["ui_session"]


async def guard(connection: ASGIConnection, handler: BaseRouteHandler) -> None:
    """Require a session, the handler's role, and on unsafe methods the CSRF token."""
    if handler.opt.get("public"):
        return
    found = await current(connection)
    if found is None:
        raise SignInRequired()
    needed = handler.opt.get("role", "viewer")
    if not users.may(found.user.role, needed):
        raise Forbidden(f"Your role ({found.user.role}) may not do this; it needs {needed}.")
    if connection.scope["method"] not in SAFE_METHODS:
        sent = connection.headers.get(CSRF_HEADER)
        if sent is None:
            form = await Request(connection.scope, connection.receive).form()
            sent = form.get(CSRF_FIELD)
        if not isinstance(sent, str) or not hmac.compare_digest(sent, found.csrf):
            raise StaleForm(
                "This form has expired or did not come from this gateway; "
                "reload the page and try again.",
                found.csrf,
            )
    connection.scope["state"]["ui_session"] = found
