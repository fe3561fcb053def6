"""Alarms: `/alert-rules` (CRUD with ETags), `/events` with ack, clear and comment, `/alerts`
(the alarms themselves) and Sepolo's `/incidents` (the same alarms as incidents).

Reading needs `incidents.read`; changing rules and acting on alarms needs `events.write`.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any, Final

from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, QueryParameter

from edge import alarms
from edge.models import Alarm, AlertRule, Event
from edge.runtime import Runtime
from web.api import params, resources
from web.api.dialect import Dialect
from web.api.errors import ApiError
from web.api.series import DeviceId, From, FromUtc, To, ToUtc

READ: Final = {"scope": "incidents.read"}
WRITE: Final = {"scope": "events.write"}
# Sepolo's incident states.
INCIDENT_STATES: Final = {0: "active", 1: "acknowledged", 2: "cleared"}
SinceCamel = Annotated[datetime | None, QueryParameter(name="updatedSince")]


def _state(a: Alarm) -> str:
    if a.cleared_at is not None:
        return "cleared"
    return "acknowledged" if a.acked_at is not None else "active"


def alarm_out(a: Alarm) -> dict[str, Any]:
    """An alarm with its audit trail."""
    return {
        "id": a.id, "rule_id": a.rule_id, "device_id": a.device_id, "metric": a.metric,
        "severity": a.severity, "message": a.message, "value": a.value, "state": _state(a),
        "raised_at": resources.iso(a.raised_at),
        "acknowledged_at": resources.iso(a.acked_at), "acknowledged_by": a.acked_by,
        "cleared_at": resources.iso(a.cleared_at), "cleared_by": a.cleared_by,
        "trail": [{"action": n.action, "actor": n.actor, "text": n.text,
                   "at": resources.iso(n.ts_ms)} for n in a.notes],
    }  # fmt: skip


def _incident(a: Alarm) -> dict[str, Any]:
    state = {"active": 0, "acknowledged": 1, "cleared": 2}[_state(a)]
    end = a.cleared_at
    return {
        "id": a.id, "device_id": a.device_id, "title": a.message, "severity": a.severity,
        "state": state, "state_name": INCIDENT_STATES[state],
        "started_at_utc": resources.iso(a.raised_at),
        "acknowledged_at_utc": resources.iso(a.acked_at),
        "resolved_at_utc": resources.iso(end),
        "duration_seconds": None if end is None else round((end - a.raised_at) / 1000, 3),
    }  # fmt: skip


def _event(e: Event) -> dict[str, Any]:
    return {
        "id": e.id, "type": e.type, "severity": e.severity, "message": e.message,
        "device_id": e.device_id, "ts": resources.iso(e.ts_ms), "data": e.data,
        "acknowledged": e.acknowledged, "cleared": e.cleared,
    }  # fmt: skip


def _rule(r: AlertRule) -> dict[str, Any]:
    return {
        "id": r.id, "name": r.name, "kind": r.kind, "device_id": r.device_id,
        "metric": r.metric, "params": r.params, "severity": r.severity, "enabled": r.enabled,
        "etag": resources.etag(r), "created_at": resources.iso(r.created_at),
        "updated_at": resources.iso(r.updated_at), "deleted_at": resources.iso(r.deleted_at),
    }  # fmt: skip


def _window(start: datetime | None, end: datetime | None) -> tuple[int | None, int | None]:
    return resources.epoch_ms(start, "from"), resources.epoch_ms(end, "to")


def _text(body: dict[str, Any], required: bool) -> str | None:
    text = body.get("text", body.get("comment"))
    if text is None and not required:
        return None
    if not isinstance(text, str) or not text.strip() or len(text) > 2000:
        raise ApiError(422, "text must be 1 to 2,000 characters.", {"field": "text"})
    return text.strip()


class AlertRulesController(Controller):
    """Rules the gateway evaluates as readings arrive."""

    path = "/alert-rules"
    tags = ["alarms"]

    @get("/", opt=READ)
    async def list_rules(
        self,
        request: Request,
        runtime: NamedDependency[Runtime],
        dialect: NamedDependency[Dialect],
        limit: params.PageSize = None,
        page_size: params.CamelSize = None,
        cursor: FromQuery[str | None] = None,
        updated_since: FromQuery[datetime | None] = None,
        updated_since_camel: SinceCamel = None,
    ) -> dict[str, Any]:
        """Rules in (updated_at, id) order; with updated_since, deleted ones too."""
        size = params.page_size(dialect, limit, page_size)
        since = resources.epoch_ms(updated_since or updated_since_camel, "updated_since")
        page = await asyncio.to_thread(runtime.store.rule_page, params.caller(request).boundary,
                                       since, cursor, size)  # fmt: skip
        return dialect.page(request, [_rule(r) for r in page.items], page.next_cursor, size)

    @get("/{rule_id:str}", opt=READ)
    async def get_rule(
        self, request: Request, runtime: NamedDependency[Runtime],
        dialect: NamedDependency[Dialect], rule_id: FromPath[str],
    ) -> Response[dict[str, Any]]:  # fmt: skip
        """One rule, with its ETag."""
        found = await asyncio.to_thread(runtime.store.rule, params.caller(request).boundary,
                                        rule_id)  # fmt: skip
        return Response(dialect.one(request, _rule(found)), headers={"ETag": resources.etag(found)})

    @post("/", opt=WRITE)
    async def create_rule(
        self, request: Request, runtime: NamedDependency[Runtime], dialect: NamedDependency[Dialect]
    ) -> Response[dict[str, Any]]:
        """A new rule: name, kind, device_id, metric, params, severity, enabled."""
        caller = params.caller(request)
        rule = alarms.rule_from_body(caller.org_id, params.json_body(dialect, await request.body()))
        made = await asyncio.to_thread(runtime.store.create_rule, caller.boundary, rule)
        return Response(dialect.one(request, _rule(made)), status_code=201,
                        headers={"ETag": resources.etag(made)})  # fmt: skip

    @patch("/{rule_id:str}", opt=WRITE)
    async def update_rule(
        self, request: Request, runtime: NamedDependency[Runtime],
        dialect: NamedDependency[Dialect], rule_id: FromPath[str],
    ) -> Response[dict[str, Any]]:  # fmt: skip
        """Change name, params, severity or enabled; a stale If-Match gets 409."""
        body = params.json_body(dialect, await request.body())
        updated = await asyncio.to_thread(
            runtime.store.update_rule, params.caller(request).boundary, rule_id, body,
            params.if_match(request), alarms.check,
        )  # fmt: skip
        return Response(dialect.one(request, _rule(updated)),
                        headers={"ETag": resources.etag(updated)})  # fmt: skip

    @delete("/{rule_id:str}", opt=WRITE, status_code=204)
    async def delete_rule(
        self, request: Request, runtime: NamedDependency[Runtime], rule_id: FromPath[str]
    ) -> None:
        """Remove a rule (soft); its active alarm is cleared."""
        await asyncio.to_thread(runtime.store.delete_rule, params.caller(request).boundary,
                                rule_id)  # fmt: skip


class EventsController(Controller):
    """The event log, and the actions on an alarm (by its `alm_` id or its event's id)."""

    path = "/events"
    tags = ["alarms"]

    @get("/", opt=READ)
    async def list_events(
        self,
        request: Request,
        runtime: NamedDependency[Runtime],
        dialect: NamedDependency[Dialect],
        type: FromQuery[str | None] = None,
        severity: FromQuery[str | None] = None,
        acknowledged: FromQuery[bool | None] = None,
        device_id: FromQuery[str | None] = None,
        device_id_camel: DeviceId = None,
        start: From = None,
        start_utc: FromUtc = None,
        end: To = None,
        end_utc: ToUtc = None,
        limit: params.PageSize = None,
        page_size: params.CamelSize = None,
        cursor: FromQuery[str | None] = None,
    ) -> dict[str, Any]:
        """Newest first; `acknowledged` keeps only alarm events in that state."""
        size = params.page_size(dialect, limit, page_size)
        start_ms, end_ms = _window(start or start_utc, end or end_utc)
        where = {"type": type, "severity": severity, "acknowledged": acknowledged,
                 "device_id": device_id or device_id_camel, "from": start_ms,
                 "to": end_ms}  # fmt: skip
        page = await asyncio.to_thread(runtime.store.event_page, params.caller(request).boundary,
                                       where, cursor, size)  # fmt: skip
        return dialect.page(request, [_event(e) for e in page.items], page.next_cursor, size)

    @post("/{event_id:str}/ack", opt=WRITE, status_code=200)
    async def acknowledge(
        self, request: Request, runtime: NamedDependency[Runtime],
        dialect: NamedDependency[Dialect], event_id: FromPath[str],
    ) -> dict[str, Any]:  # fmt: skip
        """Acknowledge the alarm (once; 422 if it was already)."""
        caller = params.caller(request)
        text = _text(params.json_body(dialect, await request.body() or b"{}"), required=False)
        done = await asyncio.to_thread(runtime.store.acknowledge_alarm, caller.boundary,
                                       event_id, caller.key.id, text)  # fmt: skip
        return dialect.one(request, alarm_out(done))

    @post("/{event_id:str}/clear", opt=WRITE, status_code=200)
    async def clear(
        self, request: Request, runtime: NamedDependency[Runtime],
        dialect: NamedDependency[Dialect], event_id: FromPath[str],
    ) -> dict[str, Any]:  # fmt: skip
        """Clear the alarm by hand (422 if it is cleared already)."""
        caller = params.caller(request)
        text = _text(params.json_body(dialect, await request.body() or b"{}"), required=False)
        done = await asyncio.to_thread(runtime.store.clear_alarm, caller.boundary, event_id,
                                       caller.key.id, text)  # fmt: skip
        return dialect.one(request, alarm_out(done))

    @post("/{event_id:str}/comment", opt=WRITE, status_code=200)
    async def comment(
        self, request: Request, runtime: NamedDependency[Runtime],
        dialect: NamedDependency[Dialect], event_id: FromPath[str],
    ) -> dict[str, Any]:  # fmt: skip
        """Add an operator's note (`text`) to the alarm's trail."""
        caller = params.caller(request)
        text = _text(params.json_body(dialect, await request.body()), required=True)
        assert text is not None
        done = await asyncio.to_thread(runtime.store.comment_alarm, caller.boundary, event_id,
                                       caller.key.id, text)  # fmt: skip
        return dialect.one(request, alarm_out(done))


class AlertsController(Controller):
    """The alarms the rules raised: active ones and history."""

    path = "/alerts"
    tags = ["alarms"]

    @get("/", opt=READ)
    async def list_alerts(
        self,
        request: Request,
        runtime: NamedDependency[Runtime],
        dialect: NamedDependency[Dialect],
        wanted: Annotated[str | None, QueryParameter(name="state")] = None,
        device_id: FromQuery[str | None] = None,
        device_id_camel: DeviceId = None,
        rule_id: FromQuery[str | None] = None,
        rule_id_camel: Annotated[str | None, QueryParameter(name="ruleId")] = None,
        start: From = None,
        start_utc: FromUtc = None,
        end: To = None,
        end_utc: ToUtc = None,
        limit: params.PageSize = None,
        page_size: params.CamelSize = None,
        cursor: FromQuery[str | None] = None,
    ) -> dict[str, Any]:
        """Newest first; `state` active, acknowledged or cleared; by device, rule, window."""
        if wanted is not None and wanted not in INCIDENT_STATES.values():
            raise ApiError(400, "state must be active, acknowledged or cleared.",
                           {"param": "state"})  # fmt: skip
        size = params.page_size(dialect, limit, page_size)
        page = await asyncio.to_thread(
            runtime.store.alarm_page, params.caller(request).boundary, wanted,
            device_id or device_id_camel, _window(start or start_utc, end or end_utc), cursor,
            size, rule_id or rule_id_camel,
        )  # fmt: skip
        return dialect.page(request, [alarm_out(a) for a in page.items], page.next_cursor, size)

    @get("/{alarm_id:str}", opt=READ)
    async def get_alert(
        self, request: Request, runtime: NamedDependency[Runtime],
        dialect: NamedDependency[Dialect], alarm_id: FromPath[str],
    ) -> dict[str, Any]:  # fmt: skip
        """One alarm with its audit trail."""
        found = await asyncio.to_thread(runtime.store.alarm, params.caller(request).boundary,
                                        alarm_id)  # fmt: skip
        return dialect.one(request, alarm_out(found))


class IncidentsController(Controller):
    """Sepolo's incidents: the same alarms, state as 0 active, 1 acknowledged, 2 cleared."""

    path = "/incidents"
    tags = ["alarms"]

    @get("/", opt=READ)
    async def list_incidents(
        self,
        request: Request,
        runtime: NamedDependency[Runtime],
        dialect: NamedDependency[Dialect],
        wanted: Annotated[int | None, QueryParameter(name="state", ge=0, le=2)] = None,
        device_id: FromQuery[str | None] = None,
        device_id_camel: DeviceId = None,
        start: From = None,
        start_utc: FromUtc = None,
        end: To = None,
        end_utc: ToUtc = None,
        limit: params.PageSize = None,
        page_size: params.CamelSize = None,
        cursor: FromQuery[str | None] = None,
    ) -> dict[str, Any]:
        """Newest first, by state, device and time window (`fromUtc`, `toUtc`)."""
        size = params.page_size(dialect, limit, page_size)
        page = await asyncio.to_thread(
            runtime.store.alarm_page, params.caller(request).boundary,
            None if wanted is None else INCIDENT_STATES[wanted], device_id or device_id_camel,
            _window(start or start_utc, end or end_utc), cursor, size,
        )  # fmt: skip
        return dialect.page(request, [_incident(a) for a in page.items], page.next_cursor, size)
