"""Settings: API keys (a new key is shown once; revoke), users and roles, retention, CSV links,
and report and export jobs (`web.ui.jobs`). Keys and users are the admin's; making a link or
queueing a job is a technician's; anyone signed in may read the jobs and download their files."""

from __future__ import annotations

import asyncio
from typing import Any, Final

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath

from edge import scopes, users
from edge.runtime import Runtime
from edge.store import Conflict, NotFound, Refused
from web.api.dialect import DIALECTS
from web.api.telemetry_export import link
from web.ui import data, jobs, pages, sessions

ADMIN: Final = {"role": "admin"}
TECH: Final = {"role": "technician"}
USER_ACTIONS: Final = ("role", "disable", "enable", "password")


def context(request: Request, runtime: Runtime, role: str, **more: Any) -> dict[str, Any]:
    """The settings page: keys and users (for admins), retention, links, reports, exports."""
    store = runtime.store
    org = store.organization.id
    admin = users.may(role, "admin")
    recent = jobs.recent(request, runtime)
    devices = [d for d, _ in data.devices(runtime)]
    sites = store.grouping_page("sites", org, limit=100).items
    return {
        "keys": store.api_keys(org) if admin else [],
        "users": store.users(org) if admin else [],
        "roles": users.ROLES,
        "scopes": sorted(scopes.SCOPES),
        "retention": runtime.settings.retention,
        "stats": store.stats(),
        "disk": data.disk(runtime),
        "devices": devices,
        "names": {d.id: d.name for d in devices},
        "sites": sites,
        "site_names": {s.id: s.name for s in sites},
        "jobs_settings": runtime.settings.jobs,
        "jobs": recent,
        "jobs_pending": jobs.pending(recent),
        "report_names": jobs.REPORT_NAMES,
        "include_names": jobs.INCLUDE_NAMES,
        "secret": None,
        "export": None,
        "error": None,
        "form": {},
        "now": data.now(),
        **more,
    }


def create_key(runtime: Runtime, form: dict[str, Any], chosen: list[str]) -> tuple[str, str]:
    """A new key: (its name, its secret, shown once)."""
    name = str(form.get("name", "")).strip() or "ui"
    if not chosen:
        raise Refused("choose at least one scope")
    wanted = scopes.parse(",".join(chosen))
    key, secret = runtime.store.create_api_key(runtime.store.organization.id, name, wanted)
    return key.name, secret


def key_name(runtime: Runtime, key_id: str) -> str:
    """A key as people know it: its name and the start of its secret."""
    found = [k for k in runtime.store.api_keys(runtime.store.organization.id) if k.id == key_id]
    if not found:
        raise NotFound(f"no key {key_id}")
    return f"“{found[0].name}” ({found[0].prefix}…)"


def change_user(runtime: Runtime, user_id: str, action: str, form: dict[str, Any]) -> str:
    """Change a user's role, state or password; returns what was done."""
    store, org = runtime.store, runtime.store.organization.id
    if action == "role":
        user = store.update_user(org, user_id, role=str(form.get("role", "")))
        return f"{user.username} is now {user.role}."
    if action == "password":
        user = store.update_user(org, user_id, password=str(form.get("password", "")))
        return f"{user.username}'s password is changed; their sessions ended."
    user = store.update_user(org, user_id, disabled=action == "disable")
    return f"{user.username} is {'disabled' if user.disabled_at else 'enabled'}."


def export(request: Request, runtime: Runtime, form: dict[str, Any]) -> dict[str, Any]:
    """A signed, hour-long CSV link for a device's readings over the chosen days."""
    device_id = str(form.get("device_id", ""))
    span = jobs.days(form)
    org = runtime.store.organization.id
    runtime.store.device(org, device_id)
    metrics = [m.strip() for m in str(form.get("metrics", "")).split(",") if m.strip()] or None
    return link(request, DIALECTS[-1], org, device_id, metrics, span)


class SettingsController(Controller):
    """/settings."""

    path = "/settings"

    @get("/")
    async def settings_page(self, request: Request, runtime: NamedDependency[Runtime]) -> Any:
        """Keys, users, retention, exports."""
        role = sessions.of(request).user.role
        found = await asyncio.to_thread(context, request, runtime, role)
        return pages.page(request, "settings", found)

    @post("/keys", opt=ADMIN)
    async def new_key(self, request: Request, runtime: NamedDependency[Runtime]) -> Any:
        """Create a key and show its secret, this once."""
        form = await request.form()
        try:
            name, secret = await asyncio.to_thread(
                create_key, runtime, dict(form), form.getall("scopes", [])
            )
        except (Refused, ValueError) as error:
            return await _settings(request, runtime, 422, error=str(error), form=dict(form))
        return await _settings(request, runtime, 201, secret={"name": name, "value": secret})

    @post("/keys/{key_id:str}/revoke", opt=ADMIN)
    async def revoke_key(
        self, request: Request, runtime: NamedDependency[Runtime], key_id: FromPath[str]
    ) -> Any:
        """Revoke a key, once confirmed; requests with it get 401 within 5 s."""
        form = dict(await request.form())
        if not pages.confirmed(form):
            return pages.confirm(
                request,
                f"Revoke the key {await asyncio.to_thread(key_name, runtime, key_id)}? "
                "Whatever uses it stops working.",
                f"/settings/keys/{key_id}/revoke",
                "Yes, revoke it",
                form,
                "/settings",
                danger=True,
            )
        done = await asyncio.to_thread(
            runtime.store.revoke_api_key, runtime.store.organization.id, key_id
        )
        return pages.done("/settings", "Key revoked." if done else "That key was revoked already.")

    @post("/users", opt=ADMIN)
    async def new_user(self, request: Request, runtime: NamedDependency[Runtime]) -> Any:
        """Create a user; a refusal keeps the form (but not the password)."""
        form = dict(await request.form())
        store = runtime.store
        try:
            user = await asyncio.to_thread(
                store.create_user,
                store.organization.id,
                str(form.get("username", "")),
                str(form.get("password", "")),
                str(form.get("role", "")),
            )
        except (ValueError, Conflict) as error:
            form.pop("password", None)
            return await _settings(request, runtime, 422, error=str(error), form=form)
        return pages.done("/settings", f"{user.username} ({user.role}) can sign in now.")

    @post("/users/{user_id:str}/{action:str}", opt=ADMIN)
    async def user_action(
        self,
        request: Request,
        runtime: NamedDependency[Runtime],
        user_id: FromPath[str],
        action: FromPath[str],
    ) -> Any:
        """Change a user's role, disable, enable or set a password, once confirmed."""
        form = dict(await request.form())
        if action not in USER_ACTIONS:
            raise NotFound(f"no action {action}")
        # A new password is not echoed back into a confirmation page.
        if action != "password" and not pages.confirmed(form):
            return pages.confirm(
                request,
                _question(action, form),
                f"/settings/users/{user_id}/{action}",
                "Yes, do it",
                form,
                "/settings",
            )
        try:
            said = await asyncio.to_thread(change_user, runtime, user_id, action, form)
        except (Refused, ValueError) as error:
            return pages.done("/settings", f"Not done: {error}.")
        return pages.done("/settings", said)

    @post("/export", opt=TECH)
    async def export_link(self, request: Request, runtime: NamedDependency[Runtime]) -> Any:
        """A download link for a device's readings."""
        form = dict(await request.form())
        try:
            link = await asyncio.to_thread(export, request, runtime, form)
        except (Refused, NotFound) as error:
            return await _settings(request, runtime, 422, error=str(error), form=form)
        return await _settings(request, runtime, 200, export=link, form=form)

    @post("/reports", opt=TECH)
    async def queue_report(self, request: Request, runtime: NamedDependency[Runtime]) -> Any:
        """Queue a report run; the jobs list shows it until its file is ready."""
        form = dict(await request.form())
        actor = sessions.of(request).user.username
        try:
            job = await asyncio.to_thread(jobs.queue_report, runtime, form, actor)
        except (Refused, NotFound) as error:
            return await _settings(request, runtime, 422, error=str(error), form=form)
        return pages.done("/settings#jobs", f"{jobs.REPORT_NAMES[job.type]} report queued.")

    @post("/exports", opt=TECH)
    async def queue_export(self, request: Request, runtime: NamedDependency[Runtime]) -> Any:
        """Queue an export of a device's or site's data as a zip."""
        form = await request.form()
        fields, includes = dict(form), form.getall("includes", [])
        actor = sessions.of(request).user.username
        try:
            await asyncio.to_thread(jobs.queue_export, runtime, fields, includes, actor)
        except (Refused, NotFound) as error:
            kept = {**fields, "includes_chosen": includes}
            return await _settings(request, runtime, 422, error=str(error), form=kept)
        return pages.done("/settings#jobs", "Export queued.")


def _question(action: str, form: dict[str, Any]) -> str:
    return {
        "role": f"Make this user {form.get('role')}?",
        "disable": "Disable this user? Their sessions end now.",
        "enable": "Enable this user again?",
    }[action]


async def _settings(request: Request, runtime: Runtime, status: int, **more: Any) -> Any:
    role = sessions.of(request).user.role
    found = await asyncio.to_thread(context, request, runtime, role, **more)
    return pages.page(request, "settings", found, status)
