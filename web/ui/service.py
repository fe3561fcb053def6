"""Service: reports made on site (asset or device, notes, parts used from the inventory,
state), service visits (made and updated here) and appointments (read: they come from the
upstream).

Reports and visits are stored through the store like any record made on site: they wait
in its outbox and the sync agent pushes them when the uplink is up, so a technician in a
plant room without one loses nothing. A new report's form carries the id it will get, so
a form sent again after a dropped connection makes no second report.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated, Any, Final

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, QueryParameter

from edge import ids
from edge.maintenance import REPORT_STATES, VISIT_STATUSES, Record
from edge.runtime import Runtime
from edge.store import Conflict, NotFound, RecordFilter, Refused
from web.ui import data, pages, sessions

TECH: Final = {"role": "technician"}
SHOWN: Final = 50
# Parts rows on a report's form; more parts: another report, or the upstream's system.
PART_ROWS: Final = 4
# Assets and parts offered in a form's choices, at most.
CHOICES: Final = 1_000
# `state` is a name Litestar keeps for the app's state.
StateQuery = Annotated[str, QueryParameter(name="state")]


def _org(runtime: Runtime) -> str:
    return runtime.store.organization.id


def _every(runtime: Runtime, kind: str, where: RecordFilter | None = None) -> list[Record]:
    """Up to CHOICES live records of a kind (for a form's choices and names)."""
    found: list[Record] = []
    cursor = None
    while len(found) < CHOICES:
        page = runtime.store.record_page(_org(runtime), kind, where, cursor, 500)
        found += page.items
        cursor = page.next_cursor
        if cursor is None:
            break
    return found[:CHOICES]


def _waiting(runtime: Runtime) -> set[str]:
    """Ids of the reports and visits made here that the upstream does not hold yet."""
    waiting: set[str] = set()
    after = None
    while True:
        batch = runtime.store.unpushed_records(after, 500)
        waiting |= {r.id for r in batch}
        if len(batch) < 500:
            return waiting
        after = (batch[-1].updated_at, batch[-1].id)


def _choices(runtime: Runtime) -> dict[str, Any]:
    assets = sorted(_every(runtime, "assets"), key=lambda a: a.fields["name"].lower())
    devices = [d for d, _ in data.devices(runtime)]
    return {
        "assets": assets,
        "asset_names": {a.id: a.fields["name"] for a in assets},
        "devices": devices,
        "device_names": {d.id: d.name for d in devices},
    }


def _filter(asset: str, device: str, **more: Any) -> RecordFilter:
    equal = {"asset_id": asset or None, "device_id": device or None, **more}
    return RecordFilter({k: v for k, v in equal.items() if v is not None})


def report_list(
    runtime: Runtime, asset: str, device: str, state: str, cursor: str | None
) -> dict[str, Any]:
    """A page of service reports, oldest change first, filtered by asset, device and state."""
    chosen = int(state) if state.isdigit() and int(state) < len(REPORT_STATES) else None
    where = _filter(asset, device, state=chosen)
    page = runtime.store.record_page(_org(runtime), "service_reports", where, cursor, SHOWN)
    parts = {p.id: p.fields["name"] for p in _every(runtime, "parts")}
    return {
        **_choices(runtime),
        "reports": page.items,
        "next": page.next_cursor,
        "waiting": _waiting(runtime),
        "part_names": parts,
        "states": list(enumerate(REPORT_STATES)),
        "filters": {"asset": asset, "device": device, "state": "" if chosen is None else state},
    }


def report_form(runtime: Runtime, form: dict[str, Any], error: str | None = None) -> dict[str, Any]:
    """The new report's form: what was typed (and the id it will get), and the choices."""
    parts = _every(runtime, "parts", RecordFilter({"active": 1}))
    return {
        **_choices(runtime),
        "form": {"id": ids.new_id("svr"), "state": "0", **form},
        "parts": sorted(parts, key=lambda p: p.fields["name"].lower()),
        "rows": range(1, PART_ROWS + 1),
        "states": list(enumerate(REPORT_STATES)),
        "error": error,
    }


def _number(form: dict[str, Any], name: str, label: str) -> float | None:
    raw = str(form.get(name, "")).strip().replace(",", ".")
    if not raw:
        return None
    try:
        return float(raw)
    except ValueError:
        raise Refused(f"{label} must be a number") from None


def _time(form: dict[str, Any], name: str, label: str) -> int | None:
    """A datetime-local field, read as UTC (every time in the UI is UTC), as epoch ms."""
    raw = str(form.get(name, "")).strip()
    if not raw:
        return None
    try:
        when = datetime.fromisoformat(raw)
    except ValueError:
        raise Refused(f"{label} must be a date and time such as 2026-05-24T10:00") from None
    return int((when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp() * 1000)


def report_fields(form: dict[str, Any], technician: str) -> dict[str, Any]:
    """The report the form describes, as the store takes it."""
    used = []
    for n in range(1, PART_ROWS + 1):
        part = str(form.get(f"part_{n}", "")).strip()
        quantity = _number(form, f"qty_{n}", f"the quantity of part {n}")
        if part:
            used.append({"part_id": part, "quantity": 1 if quantity is None else quantity})
    state = str(form.get("state", "0"))
    return {
        "asset_id": form.get("asset_id") or None,
        "device_id": form.get("device_id") or None,
        "state": int(state) if state.isdigit() else -1,
        "notes": str(form.get("notes", "")).strip() or None,
        "parts_used": used,
        "technician": technician,
    }


def save_report(runtime: Runtime, form: dict[str, Any], technician: str) -> Record:
    """Store the report (Refused names what is wrong); the same form again: the same report."""
    record_id = str(form.get("id") or "") or None
    try:
        made, _ = runtime.store.create_record(
            _org(runtime), "service_reports", report_fields(form, technician), record_id
        )
    except (ValueError, Conflict, NotFound) as error:
        raise Refused(str(error)) from None
    return made


def visit_list(runtime: Runtime, asset: str, device: str, cursor: str | None) -> dict[str, Any]:
    """A page of service visits, oldest change first, filtered by asset and device."""
    page = runtime.store.record_page(
        _org(runtime), "service_visits", _filter(asset, device), cursor, SHOWN
    )
    return {
        **_choices(runtime),
        "visits": page.items,
        "next": page.next_cursor,
        "waiting": _waiting(runtime),
        "filters": {"asset": asset, "device": device},
    }


def _local(ms: int | None) -> str:
    """Epoch ms as a datetime-local field's value (UTC)."""
    if ms is None:
        return ""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M")


def visit_form(
    runtime: Runtime, visit_id: str | None, form: dict[str, Any] | None, error: str | None = None
) -> dict[str, Any]:
    """A visit's form: its fields (or what was typed; a new one starts now), the choices."""
    if form is None:
        form = {"status": "open", "started_at": _local(data.now())}
        if visit_id is not None:
            visit = runtime.store.record(_org(runtime), "service_visits", visit_id)
            form = {
                **{k: "" if v is None else str(v) for k, v in visit.fields.items()},
                "started_at": _local(visit.fields["started_at"]),
                "ended_at": _local(visit.fields.get("ended_at")),
                "version": str(visit.version),
            }
    return {
        **_choices(runtime),
        "visit_id": visit_id,
        "form": form,
        "statuses": VISIT_STATUSES,
        "error": error,
    }


def visit_fields(form: dict[str, Any]) -> dict[str, Any]:
    """What of a visit the form sets that may change later, as the store takes it."""
    return {
        "status": str(form.get("status", "open")),
        "ended_at": _time(form, "ended_at", "ended"),
        "estimated_cost": _number(form, "estimated_cost", "the estimated cost"),
        "actual_cost": _number(form, "actual_cost", "the actual cost"),
        "notes": str(form.get("notes", "")).strip() or None,
    }


def save_visit(
    runtime: Runtime, visit_id: str | None, form: dict[str, Any], technician: str
) -> Record:
    """Create or change a visit (Refused names a bad field; Conflict if it changed meanwhile)."""
    store, org = runtime.store, _org(runtime)
    fields = visit_fields(form)
    if visit_id is not None:
        version = int(form["version"]) if str(form.get("version", "")).isdigit() else None
        return store.update_record(org, "service_visits", visit_id, fields, version)
    fields |= {
        "started_at": _time(form, "started_at", "started"),
        "asset_id": form.get("asset_id") or None,
        "device_id": form.get("device_id") or None,
        "technician": technician,
    }
    if fields["started_at"] is None:
        raise Refused("started: say when the visit started")
    try:
        made, _ = store.create_record(org, "service_visits", fields)
    except ValueError as error:
        raise Refused(str(error)) from None
    return made


def appointment_list(runtime: Runtime, cursor: str | None) -> dict[str, Any]:
    """A page of appointments (from the upstream), oldest change first."""
    page = runtime.store.record_page(_org(runtime), "appointments", None, cursor, SHOWN)
    return {**_choices(runtime), "appointments": page.items, "next": page.next_cursor}


class ServiceController(Controller):
    """/service: service reports, visits and appointments."""

    path = "/service"

    @get("/")
    async def list_reports(
        self,
        request: Request,
        runtime: NamedDependency[Runtime],
        asset: FromQuery[str] = "",
        device: FromQuery[str] = "",
        state_wanted: StateQuery = "",
        cursor: FromQuery[str | None] = None,
    ) -> Any:
        """Service reports, by asset, device and state."""
        found = await asyncio.to_thread(report_list, runtime, asset, device, state_wanted, cursor)
        return pages.page(request, "service", found)

    @get("/reports/new", opt=TECH)
    async def new_report(self, request: Request, runtime: NamedDependency[Runtime]) -> Any:
        """An empty report form."""
        return pages.page(request, "report", await asyncio.to_thread(report_form, runtime, {}))

    @post("/reports", opt=TECH)
    async def create_report(self, request: Request, runtime: NamedDependency[Runtime]) -> Any:
        """Store a report, once confirmed; a refusal keeps the form as typed."""
        form = dict(await request.form())
        if not pages.confirmed(form):
            return pages.confirm(request, "Save this service report on the gateway?",
                                 "/service/reports", "Yes, save it", form, "/service")  # fmt: skip
        try:
            await asyncio.to_thread(save_report, runtime, form, sessions.of(request).user.username)
        except Refused as error:
            context = await asyncio.to_thread(report_form, runtime, form, str(error))
            return pages.page(request, "report", context, 422)
        return pages.done("/service", "Service report saved; it is sent upstream with the sync.")

    @get("/visits")
    async def list_visits(
        self,
        request: Request,
        runtime: NamedDependency[Runtime],
        asset: FromQuery[str] = "",
        device: FromQuery[str] = "",
        cursor: FromQuery[str | None] = None,
    ) -> Any:
        """Service visits, by asset and device."""
        found = await asyncio.to_thread(visit_list, runtime, asset, device, cursor)
        return pages.page(request, "visits", found)

    @get("/visits/new", opt=TECH)
    async def new_visit(self, request: Request, runtime: NamedDependency[Runtime]) -> Any:
        """An empty visit form, starting now."""
        context = await asyncio.to_thread(visit_form, runtime, None, None)
        return pages.page(request, "visit", context)

    @get("/visits/{visit_id:str}", opt=TECH)
    async def edit_visit(
        self, request: Request, runtime: NamedDependency[Runtime], visit_id: FromPath[str]
    ) -> Any:
        """A visit's form."""
        context = await asyncio.to_thread(visit_form, runtime, visit_id, None)
        return pages.page(request, "visit", context)

    @post("/visits", opt=TECH)
    async def create_visit(self, request: Request, runtime: NamedDependency[Runtime]) -> Any:
        """Store a visit, once confirmed."""
        return await _visit_saved(request, runtime, None)

    @post("/visits/{visit_id:str}", opt=TECH)
    async def update_visit(
        self, request: Request, runtime: NamedDependency[Runtime], visit_id: FromPath[str]
    ) -> Any:
        """Change a visit, once confirmed; a stale form is refused."""
        return await _visit_saved(request, runtime, visit_id)

    @get("/appointments")
    async def list_appointments(
        self,
        request: Request,
        runtime: NamedDependency[Runtime],
        cursor: FromQuery[str | None] = None,
    ) -> Any:
        """Appointments, as the upstream plans them."""
        found = await asyncio.to_thread(appointment_list, runtime, cursor)
        return pages.page(request, "appointments", found)


async def _visit_saved(request: Request, runtime: Runtime, visit_id: str | None) -> Any:
    form = dict(await request.form())
    action = f"/service/visits/{visit_id}" if visit_id else "/service/visits"
    if not pages.confirmed(form):
        question = "Save the changes to this visit?" if visit_id else "Save this service visit?"
        return pages.confirm(request, question, action, "Yes, save it", form, "/service/visits")
    try:
        await asyncio.to_thread(
            save_visit, runtime, visit_id, form, sessions.of(request).user.username
        )
    except (Refused, Conflict) as error:
        message = (
            str(error)
            if not isinstance(error, Conflict)
            else "someone changed this visit meanwhile; reload it and apply your change again"
        )
        context = await asyncio.to_thread(visit_form, runtime, visit_id, form, message)
        return pages.page(request, "visit", context, 422)
    return pages.done("/service/visits", "Service visit saved; it is sent upstream with the sync.")
