"""First run, sign-in and sign-out.

The first visit to a gateway without users shows the first-run page, which
creates the admin (as `edge users create` does); after that it is gone.
"""

from __future__ import annotations

import asyncio
from typing import Any, Final

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromQuery
from litestar.response import Redirect

from edge.runtime import Runtime
from edge.store import Conflict
from web.ui import pages, sessions

PUBLIC: Final = {"public": True}


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
        if not sessions.pre_token_ok(request, form.get("form_token")):
            return _form_page(
                request,
                "login",
                {
                    "next": _next(form.get("next")),
                    "values": form,
                    "error": "The form had expired; please sign in again.",
                },
                403,
            )
        user = await asyncio.to_thread(
            runtime.store.authenticate, str(form.get("username", "")), str(form.get("password", ""))
        )
        if user is None:
            return _form_page(
                request,
                "login",
                {
                    "next": _next(form.get("next")),
                    "values": form,
                    "error": "Wrong username or password.",
                },
                401,
            )
        return await _signed_in(runtime, user.id, _next(form.get("next")))

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
