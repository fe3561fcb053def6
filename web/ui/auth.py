"""First run, sign-in and sign-out.

The first visit to a gateway without users shows the first-run page, which
creates the admin (as `edge users create` does); after that it is gone.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Final

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromQuery
from litestar.response import Redirect

from edge.runtime import Runtime
from edge.store import Conflict
from web.ui import pages, sessions

PUBLIC: Final = {"public": True}
# Failed sign-ins allowed per name and address in a window, before that pair must wait.
MAX_FAILURES: Final = 5
FAILURE_WINDOW_S: Final = 300.0


class SignInThrottle:
    """Counts failed sign-ins per (username, client address): Argon2 makes each guess slow,
    this stops a run of them."""

    def __init__(self) -> None:
        self._failures: dict[tuple[str, str], list[float]] = {}

    def wait_s(self, key: tuple[str, str]) -> int:
        """Seconds before this pair may try again (0: now)."""
        now = time.monotonic()
        recent = [t for t in self._failures.get(key, []) if now - t < FAILURE_WINDOW_S]
        self._failures[key] = recent
        if len(recent) < MAX_FAILURES:
            return 0
        return int(FAILURE_WINDOW_S - (now - recent[0])) + 1

    def failed(self, key: tuple[str, str]) -> None:
        if len(self._failures) > 10_000:  # made-up names must not grow it without bound
            self._failures.clear()
        self._failures.setdefault(key, []).append(time.monotonic())

    def succeeded(self, key: tuple[str, str]) -> None:
        self._failures.pop(key, None)


def _next(value: Any) -> str:
    """Only a path on this gateway, never another site."""
    text = value if isinstance(value, str) else "/"
    safe = text.startswith("/") and not text.startswith("//") and "\\" not in text
    return text if safe else "/"


def _form_page(request: Request, name: str, context: dict[str, Any], status: int = 200) -> Any:
    token, cookie = sessions.pre_token(request)
    shown = pages.page(request, name, {**context, "form_token": token}, status=status)
    if cookie is not None:
        shown.cookies.append(cookie)
    return shown


async def _signed_in(runtime: Runtime, user_id: str, to: str) -> Redirect:
    lifetime, idle = sessions.limits(runtime)
    token = await asyncio.to_thread(runtime.store.start_session, user_id, lifetime, idle)
    return Redirect(to, status_code=303, cookies=[sessions.session_cookie(token, runtime)])


class AuthController(Controller):
    """/setup (first run), /login and /logout."""

    @get("/setup", opt=PUBLIC)
    async def setup_page(self, request: Request, runtime: NamedDependency[Runtime]) -> Any:
        """The first-run form, while the gateway has no users."""
        if await asyncio.to_thread(runtime.store.user_count):
            return Redirect("/login", status_code=303)
        return _form_page(request, "setup", {"values": {}, "error": None})

    @post("/setup", opt=PUBLIC)
    async def setup(self, request: Request, runtime: NamedDependency[Runtime]) -> Any:
        """Create the first admin and sign them in."""
        form = dict(await request.form())
        user_id, error = await _first_admin(request, runtime, form)
        if user_id is None:
            return _form_page(request, "setup", {"values": form, "error": error}, 422)
        return await _signed_in(runtime, user_id, "/")

    @get("/login", opt=PUBLIC)
    async def login_page(
        self, request: Request, runtime: NamedDependency[Runtime], next: FromQuery[str] = "/"
    ) -> Any:
        """The sign-in form (the first-run form while there are no users)."""
        if not await asyncio.to_thread(runtime.store.user_count):
            return Redirect("/setup", status_code=303)
        return _form_page(request, "login", {"next": _next(next), "error": None, "values": {}})

    @post("/login", opt=PUBLIC)
    async def login(self, request: Request, runtime: NamedDependency[Runtime]) -> Any:
        """Check the name and password; a session on success."""
        form = dict(await request.form())
        user_id, status, error = await _check(request, runtime, form)
        if user_id is None:
            context = {"next": _next(form.get("next")), "values": form, "error": error}
            return _form_page(request, "login", context, status)
        return await _signed_in(runtime, user_id, _next(form.get("next")))

    @post("/logout", opt={"role": "viewer"})
    async def logout(self, request: Request, runtime: NamedDependency[Runtime]) -> Response[Any]:
        """End the session."""
        token = request.cookies.get(sessions.SESSION_COOKIE, "")
        await asyncio.to_thread(runtime.store.end_session, token)
        return Redirect("/login", status_code=303, cookies=[sessions.cleared_cookie()])


async def _first_admin(
    request: Request, runtime: Runtime, form: dict[str, Any]
) -> tuple[str | None, str | None]:
    """(the new admin's id, None), or (None, what is wrong, in words)."""
    if not sessions.pre_token_ok(request, form.get("form_token")):
        return None, "The form had expired; please try again."
    password = str(form.get("password", ""))
    if password != form.get("password_again"):
        return None, "The two passwords differ."
    store = runtime.store
    try:
        user = await asyncio.to_thread(
            lambda: store.create_user(
                store.organization.id, str(form.get("username", "")), password, "admin", first=True
            )
        )
    except (ValueError, Conflict) as error:
        return None, str(error)
    return user.id, None


async def _check(
    request: Request, runtime: Runtime, form: dict[str, Any]
) -> tuple[str | None, int, str | None]:
    """(user id, 200, None) for a right name and password, else (None, status, why)."""
    if not sessions.pre_token_ok(request, form.get("form_token")):
        return None, 403, "The form had expired; please sign in again."
    throttle: SignInThrottle = request.app.state.sign_in_throttle
    key = (str(form.get("username", "")), request.client.host if request.client else "")
    wait = throttle.wait_s(key)
    if wait:
        return None, 429, f"Too many failed sign-ins; try again in {wait} s."
    password = str(form.get("password", ""))
    user = await asyncio.to_thread(runtime.store.authenticate, key[0], password)
    if user is None:
        throttle.failed(key)
        return None, 401, "Wrong username or password."
    throttle.succeeded(key)
    return user.id, 200, None
