"""Alarms: open ones and history, acknowledge, clear and comment (each kept in the alarm's
trail with the person's name), and the alert rule editor."""

from __future__ import annotations

import asyncio
from typing import Any, Final

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery

from edge import alarms as rules
from edge.models import AlertRule
from edge.runtime import Runtime
from edge.store import Conflict, NotFound, Refused
from web.ui import data, pages, sessions

TECH: Final = {"role": "technician"}
VIEWS: Final = ("open", "cleared")
# The fields of each rule kind's params, as the editor asks for them.
PARAMS: Final = {
    "threshold": ("op", "value", "hysteresis"),
    "rate_of_change": ("op", "rate_per_s"),
    "no_data": ("silence_s",),
    "device_offline": ("for_s",),
}
# Open alarms shown at once (the newest unacknowledged first); each is read with its trail.
OPEN_SHOWN: Final = 100
MAX_TEXT: Final = 2_000
ACTIONS: Final = {"ack": "Acknowledge", "clear": "Clear", "comment": "Add a comment"}


def alarm_list(runtime: Runtime, view: str, cursor: str | None) -> dict[str, Any]:
    """Open alarms (active, then acknowledged), or the cleared history a page at a time."""
    store = runtime.store
    org = store.organization.id
    if view == "cleared":
        found = store.alarm_page(org, "cleared", cursor=cursor, limit=50)
        shown, more = found.items, found.next_cursor
    else:
        shown = [
            *store.alarm_page(org, "active", limit=OPEN_SHOWN).items,
            *store.alarm_page(org, "acknowledged", limit=OPEN_SHOWN).items,
        ]
        more = None
        if len(shown) > OPEN_SHOWN:
            shown, more = shown[:OPEN_SHOWN], "open"
    # Listings leave out the audit trail; each shown alarm is read with it (a handful open).
    shown = [store.alarm(org, a.id) for a in shown]
    names = {d.id: d.name for d, _ in data.devices(runtime)}
    return {
        "view": view if view in VIEWS else "open",
        "alarms": shown,
        "next": more,
        "names": names,
        "now": data.now(),
        "error": None,
    }


def act(runtime: Runtime, alarm_id: str, action: str, actor: str, text: str | None) -> str:
    """Acknowledge, clear or comment; returns what was done, in words."""
    store, org = runtime.store, runtime.store.organization.id
    if text is not None and len(text) > MAX_TEXT:
        raise Refused(f"a comment is at most {MAX_TEXT:,} characters")
    if action == "ack":
        store.acknowledge_alarm(org, alarm_id, actor, text)
        return "Alarm acknowledged."
    if action == "clear":
        store.clear_alarm(org, alarm_id, actor, text)
        return "Alarm cleared."
    if not text:
        raise Refused("write the comment first")
    store.comment_alarm(org, alarm_id, actor, text)
    return "Comment added."


def rule_list(runtime: Runtime) -> dict[str, Any]:
    """Every live rule, with the devices it may name."""
    store = runtime.store
    org = store.organization.id
    found: list[AlertRule] = []
    cursor = None
    while True:
        page = store.rule_page(org, None, cursor, 500)
        found += page.items
        cursor = page.next_cursor
        if cursor is None:
            break
    active = store.active_rule_ids()
    names = {d.id: d.name for d, _ in data.devices(runtime)}
    return {"rules": sorted(found, key=lambda r: r.name.lower()), "active": active, "names": names}


def editor(
    runtime: Runtime, rule_id: str | None, form: dict[str, Any] | None, error: str | None = None
) -> dict[str, Any]:
    """The rule form: a rule's fields (or what was typed), the devices and kinds to choose."""
    if form is None:
        form = {"kind": "threshold", "severity": "warning", "enabled": "1", "op": ">"}
        if rule_id:
            rule = runtime.store.rule(runtime.store.organization.id, rule_id)
            form = {
                "name": rule.name,
                "kind": rule.kind,
                "device_id": rule.device_id or "",
                "metric": rule.metric or "",
                "severity": rule.severity,
                "enabled": "1" if rule.enabled else "",
                "version": str(rule.version),
                **{k: str(v) for k, v in rule.params.items()},
            }
    devices = [d for d, _ in data.devices(runtime)]
    return {
        "rule_id": rule_id,
        "form": form,
        "error": error,
        "devices": devices,
        "kinds": PARAMS,
        "severities": rules.SEVERITIES,
        "ops": list(rules.OPS),
    }


def rule_body(form: dict[str, Any]) -> dict[str, Any]:
    """The rule the editor's form describes, as the API's body."""
    kind = str(form.get("kind", ""))
    params: dict[str, Any] = {}
    for name in PARAMS.get(kind, ()):
        raw = str(form.get(name, "")).strip()
        if raw == "":
            continue
        try:
            params[name] = raw if name == "op" else float(raw)
        except ValueError:
            raise Refused(f"{name} must be a number") from None
    return {
        "name": str(form.get("name", "")),
        "kind": kind,
        "device_id": form.get("device_id") or None,
        "metric": form.get("metric") or None,
        "severity": form.get("severity", "warning"),
        "enabled": form.get("enabled") == "1",
        "params": params,
    }


def save_rule(runtime: Runtime, rule_id: str | None, form: dict[str, Any]) -> AlertRule:
    """Create or change a rule (Refused names a bad field; Conflict if it changed meanwhile)."""
    store, org = runtime.store, runtime.store.organization.id
    body = rule_body(form)
    if rule_id is None:
        return store.create_rule(org, rules.rule_from_body(org, body))
    version = int(form["version"]) if str(form.get("version", "")).isdigit() else None
    changes = {k: body[k] for k in ("name", "params", "severity", "enabled")}
    return store.update_rule(org, rule_id, changes, version, rules.check)


class AlarmsController(Controller):
    """/alarms: open and cleared alarms and the actions on them."""

    path = "/alarms"

    @get("/")
    async def list_alarms(
        self,
        request: Request,
        runtime: NamedDependency[Runtime],
        view: FromQuery[str] = "open",
        cursor: FromQuery[str | None] = None,
    ) -> Any:
        """Open alarms, or the history of cleared ones."""
        return pages.page(
            request, "alarms", await asyncio.to_thread(alarm_list, runtime, view, cursor)
        )

    @post("/{alarm_id:str}/{action:str}", opt=TECH)
    async def alarm_action(
        self,
        request: Request,
        runtime: NamedDependency[Runtime],
        alarm_id: FromPath[str],
        action: FromPath[str],
    ) -> Any:
        """Acknowledge, clear or comment, once confirmed (a comment needs no confirmation)."""
        form = dict(await request.form())
        if action not in ACTIONS:
            raise NotFound(f"no action {action}")
        if action != "comment" and not pages.confirmed(form):
            return pages.confirm(
                request,
                f"{ACTIONS[action]} this alarm?",
                f"/alarms/{alarm_id}/{action}",
                f"Yes, {action}",
                form,
                "/alarms",
            )
        text = str(form.get("text", "")).strip() or None
        try:
            said = await asyncio.to_thread(
                act, runtime, alarm_id, action, sessions.of(request).user.username, text
            )
        except Refused as error:
            return pages.done("/alarms", f"Not done: {error}.")
        return pages.done("/alarms", said)


class RulesController(Controller):
    """/rules: the alert rule editor."""

    path = "/rules"

    @get("/")
    async def list_rules(self, request: Request, runtime: NamedDependency[Runtime]) -> Any:
        """Every rule and whether it has an open alarm."""
        return pages.page(request, "rules", await asyncio.to_thread(rule_list, runtime))

    @get("/new", opt=TECH)
    async def new_rule(self, request: Request, runtime: NamedDependency[Runtime]) -> Any:
        """An empty rule form."""
        return pages.page(request, "rule", await asyncio.to_thread(editor, runtime, None, None))

    @get("/{rule_id:str}", opt=TECH)
    async def edit_rule(
        self, request: Request, runtime: NamedDependency[Runtime], rule_id: FromPath[str]
    ) -> Any:
        """A rule's form."""
        return pages.page(request, "rule", await asyncio.to_thread(editor, runtime, rule_id, None))

    @post("/", opt=TECH)
    async def create_rule(self, request: Request, runtime: NamedDependency[Runtime]) -> Any:
        """Create a rule; a refusal keeps the form as typed."""
        return await _saved(request, runtime, None)

    @post("/{rule_id:str}", opt=TECH)
    async def update_rule(
        self, request: Request, runtime: NamedDependency[Runtime], rule_id: FromPath[str]
    ) -> Any:
        """Change a rule; a refusal keeps the form as typed."""
        return await _saved(request, runtime, rule_id)

    @post("/{rule_id:str}/delete", opt=TECH)
    async def delete_rule(
        self, request: Request, runtime: NamedDependency[Runtime], rule_id: FromPath[str]
    ) -> Any:
        """Delete a rule (its open alarm is cleared), once confirmed."""
        form = dict(await request.form())
        if not pages.confirmed(form):
            return pages.confirm(
                request,
                "Delete this rule? Its open alarm is cleared.",
                f"/rules/{rule_id}/delete",
                "Yes, delete it",
                form,
                "/rules",
                danger=True,
            )
        await asyncio.to_thread(runtime.store.delete_rule, runtime.store.organization.id, rule_id)
        return pages.done("/rules", "Rule deleted.")


async def _saved(request: Request, runtime: Runtime, rule_id: str | None) -> Any:
    form = dict(await request.form())
    try:
        await asyncio.to_thread(save_rule, runtime, rule_id, form)
    except (Refused, Conflict, NotFound) as error:
        message = (
            str(error)
            if not isinstance(error, Conflict)
            else ("someone changed this rule meanwhile; reload it and apply your change again")
        )
        context = await asyncio.to_thread(editor, runtime, rule_id, form, message)
        return pages.page(request, "rule", context, 422)
    return pages.done("/rules", "Rule saved; it applies within 2 s.")
