"""How every UI handler answers: a page or its fragment, a confirmation, a redirect with a
message, an error page; and the formatting filters the templates use.

A UI handler returns the fragment (`<name>/_fragment.html`) for an htmx
request and the full page (`<name>/page.html`, which includes the fragment)
otherwise, so every page reads the same without JavaScript. An action is
posted twice: first without `confirmed`, answered by a confirmation naming
what will happen; then with it. After an action the browser is sent back
(303) to the page it concerns, which shows what was done.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import quote, unquote

from litestar import MediaType, Request, Response
from litestar.datastructures import Cookie
from litestar.response import Redirect, Template

from edge.models import UserSession
from web.ui import sessions

FLASH_COOKIE: Final = "edge_flash"
CONFIRMED: Final = "confirmed"
SIGNED_OUT_EVENT: Final = "edge-signed-out"
CSRF_EVENT: Final = "edge-csrf"


def is_htmx(request: Request) -> bool:
    """True for a request htmx made (it swaps in a fragment, not a whole page)."""
    return request.headers.get("hx-request") == "true"


def _common(request: Request, session: UserSession | None) -> dict[str, Any]:
    return {
        "me": session.user if session else None,
        "csrf": session.csrf if session else "",
        "path": request.url.path,
        "flash": unquote(request.cookies.get(FLASH_COOKIE, "")) or None,
    }


def page(
    request: Request,
    name: str,
    context: Mapping[str, Any],
    status: int = 200,
    session: UserSession | None = None,
) -> Template:
    """The page `name` in full, or its fragment for htmx; a shown message is then cleared."""
    chosen = session or request.scope["state"].get("ui_session")
    template = f"{name}/_fragment.html" if is_htmx(request) else f"{name}/page.html"
    full = {**_common(request, chosen), **context}
    cookies = [Cookie(key=FLASH_COOKIE, value="", max_age=0, path="/")] if full["flash"] else []
    return Template(
        template_name=template,
        context=full,
        status_code=status,
        cookies=cookies,
        media_type=MediaType.HTML,
        # Pages hold live values, a new key's secret: a shared tablet's back button or cache
        # must not show them again.
        headers={"Cache-Control": "no-store"},
    )


def confirm(
    request: Request,
    question: str,
    action: str,
    button: str,
    fields: Mapping[str, Any],
    back: str,
    danger: bool = False,
) -> Template:
    """Ask before acting: the same form again, with `confirmed`, behind a plain question."""
    return page(
        request,
        "confirm",
        {
            "question": question,
            "action": action,
            "button": button,
            "fields": dict(fields),
            "back": back,
            "danger": danger,
        },
    )


def confirmed(form: Mapping[str, Any]) -> bool:
    """True for the second post of an action, the one the person confirmed."""
    return form.get(CONFIRMED) == "yes"


def done(to: str, message: str) -> Redirect:
    """Back to the page an action concerns, which then shows `message` once."""
    return Redirect(
        to,
        status_code=303,
        cookies=[
            Cookie(key=FLASH_COOKIE, value=quote(message), path="/", max_age=60, samesite="lax")
        ],
    )


def failed(request: Request, status: int, title: str, message: str) -> Response[Any]:
    """An error page (or fragment) in plain words."""
    return page(request, "error", {"title": title, "message": message}, status=status)


def to_sign_in(request: Request) -> Response[Any]:
    """Where a request without a live session goes: the sign-in page (for htmx, by loading
    the whole page), except a form, which is kept."""
    target = "/login?next=" + quote(
        request.url.path + ("?" + request.url.query if request.url.query else "")
    )
    if is_htmx(request) and request.method != "GET":
        # A form sent after the session ended stays on the page, as typed; the script says
        # to sign in again (in another tab) and send it once more.
        return Response(
            "", status_code=401, headers={"HX-Reswap": "none", "HX-Trigger": SIGNED_OUT_EVENT}
        )
    if is_htmx(request):
        return Response("", status_code=200, headers={"HX-Redirect": target})
    return Redirect(target, status_code=303)


def stale_form(request: Request, message: str, current: str) -> Response[Any]:
    """A form from an earlier session: for htmx, kept on the page while the script takes the
    session's token (the page is this origin's: no other site can read it) and asks for one
    more press; without htmx, the error page."""
    if is_htmx(request):
        event = json.dumps({CSRF_EVENT: {"token": current}})
        return Response("", status_code=403, headers={"HX-Reswap": "none", "HX-Trigger": event})
    return failed(request, 403, "Not allowed", message)


def when(ms: int | None) -> str:
    """Epoch ms as a local-free, unambiguous UTC time: 2026-05-24 10:00:00Z."""
    if ms is None:
        return "—"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def day(ms: int | None) -> str:
    """Epoch ms as its UTC day: 2026-05-24."""
    return "—" if ms is None else when(ms)[:10]


def ago(ms: int | None, now_ms: int) -> str:
    """How long ago, in the largest whole unit: 5 s, 3 min, 2 h, 4 d."""
    if ms is None:
        return "never"
    return f"{duration(max(0, (now_ms - ms) // 1000))} ago"


def duration(seconds: float) -> str:
    """A length of time in its largest whole unit: 5 s, 3 min, 2 h, 4 d."""
    s = int(seconds)
    for unit, size in (("d", 86_400), ("h", 3_600), ("min", 60)):
        if s >= size:
            return f"{s // size} {unit}"
    return f"{s} s"


def number(value: float | None, digits: int = 3) -> str:
    """A reading for people: up to `digits` significant decimals, no trailing zeros."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "on" if value else "off"
    if float(value).is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    return f"{value:,.{digits}f}".rstrip("0").rstrip(".")


def size(n: int | None) -> str:
    """Bytes as KiB, MiB, GiB."""
    if n is None:
        return "—"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


FILTERS: Final = {"when": when, "day": day, "duration": duration, "number": number, "size": size}
GLOBALS: Final = {"ago": ago, "CSRF_FIELD": sessions.CSRF_FIELD}
