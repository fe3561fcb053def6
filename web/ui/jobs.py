"""Report and export jobs on the settings page: the forms that queue them and the list of recent
ones with their download links.

A job queued here is the same row `/reports` and `/exports` make, run by the
same runner (`edge.jobs`) within the whole organization (a UI user is not
limited to device groups), and recorded as requested by the user's name. The
list shows the newest reports and exports together; a ready one carries the
signed, time-limited link `web.api.job_links` makes, fresh on every render,
so a link copied from the page works for `[jobs] link_ttl_s` as the API's do.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

from litestar import Request

from edge.exports import INCLUDES
from edge.models import Boundary
from edge.reports import REPORT_TYPES
from edge.runtime import Runtime
from edge.store import Job, Refused
from web.api import job_links
from web.api.dialect import DIALECTS

DAY_MS: Final = 86_400_000
# The longest window one report, export or link may cover, as the API allows.
MAX_DAYS: Final = 366
# Of each kind, so a burst of one does not push the other off the page.
RECENT: Final = 10
PENDING: Final = ("queued", "running")
REPORT_NAMES: Final = {
    "energy_daily": "Energy per day",
    "alarm_log": "Alarm log",
    "telemetry_daily": "Daily min, max and average",
}
INCLUDE_NAMES: Final = {"READINGS": "readings", "ANNOTATIONS": "annotations"}
assert set(REPORT_NAMES) == set(REPORT_TYPES) and set(INCLUDE_NAMES) == set(INCLUDES)


def days(form: dict[str, Any]) -> tuple[int, int]:
    """[first day 00:00, day after the last) in epoch ms from the form's `from` and `to` dates;
    Refused unless the last day follows (or is) the first, at most MAX_DAYS days on."""
    try:
        start = datetime.fromisoformat(str(form.get("from", ""))).replace(tzinfo=UTC)
        end = datetime.fromisoformat(str(form.get("to", ""))).replace(tzinfo=UTC)
    except ValueError:
        raise Refused("give the first and last day (YYYY-MM-DD)") from None
    span = (int(start.timestamp() * 1000), int(end.timestamp() * 1000) + DAY_MS)
    if not 0 < span[1] - span[0] <= MAX_DAYS * DAY_MS:
        raise Refused(f"the last day must follow the first, at most {MAX_DAYS} days on")
    return span


def scope(form: dict[str, Any]) -> tuple[str | None, str | None]:
    """The form's `scope` (`DEVICE:<id>`, `SITE:<id>` or empty for every device)."""
    chosen = str(form.get("scope", ""))
    if not chosen:
        return None, None
    kind, _, scope_id = chosen.partition(":")
    if kind not in ("DEVICE", "SITE") or not scope_id:
        raise Refused("choose a device, a site or every device")
    return kind, scope_id


def queue_report(runtime: Runtime, form: dict[str, Any], actor: str) -> Job:
    """Queue a report run from the report form."""
    type_ = str(form.get("type", ""))
    if type_ not in REPORT_TYPES:
        raise Refused(f"choose a report: {', '.join(REPORT_NAMES.values())}")
    span = days(form)
    metric = str(form.get("metric", "")).strip()
    if len(metric) > 200:
        raise Refused("an energy point key is at most 200 characters")
    params = {"metric": metric} if metric and type_ == "energy_daily" else {}
    return _create(runtime, actor, "report", type_, scope(form), span, params)


def queue_export(runtime: Runtime, form: dict[str, Any], includes: list[str], actor: str) -> Job:
    """Queue an export from the export form: a device or a site, and what the zip holds."""
    chosen = scope(form)
    if chosen == (None, None):
        raise Refused("choose the device or site to export")
    if not includes or not set(includes) <= set(INCLUDES):
        raise Refused("choose readings, annotations or both")
    span = days(form)
    params = {"includes": [i for i in INCLUDES if i in includes]}
    return _create(runtime, actor, "export", "export", chosen, span, params)


def _create(
    runtime: Runtime,
    actor: str,
    kind: str,
    type_: str,
    chosen: tuple[str | None, str | None],
    span: tuple[int, int],
    params: dict[str, Any],
) -> Job:
    store, org = runtime.store, runtime.store.organization.id
    # Looked up first for a message about the page's list (NotFound), not about API keys.
    if chosen[0] == "DEVICE":
        store.device(org, chosen[1] or "")
    elif chosen[0] == "SITE":
        store.grouping("sites", org, chosen[1] or "")
    return store.create_job(Boundary(org), actor, kind, type_, chosen, span, params)


def recent(request: Request, runtime: Runtime) -> list[dict[str, Any]]:
    """The newest reports and exports, newest first, each with its download link when ready."""
    store = runtime.store
    owner = Boundary(store.organization.id)
    found = [
        *store.job_page(owner, "report", limit=RECENT).items,
        *store.job_page(owner, "export", limit=RECENT).items,
    ]
    found.sort(key=lambda j: (-j.created_at, j.id))
    return [_row(request, runtime, job) for job in found]


def pending(rows: list[dict[str, Any]]) -> bool:
    """True while a listed job is still to finish: the list then refreshes itself."""
    return any(row["job"].status in PENDING for row in rows)


def _row(request: Request, runtime: Runtime, job: Job) -> dict[str, Any]:
    link = job_links.link(request, DIALECTS[-1], runtime, job)
    if job.kind == "report":
        what = REPORT_NAMES.get(job.type, job.type)
        count = job.counts.get("row_count")
        counted = None if count is None else _many(count, "row")
    else:
        includes = job.params.get("includes", [])
        what = "Export of " + " and ".join(INCLUDE_NAMES.get(i, i) for i in includes)
        readings, notes = job.counts.get("reading_count"), job.counts.get("annotation_count")
        counted = (
            None
            if readings is None
            else f"{_many(readings, 'reading')}, {_many(notes or 0, 'annotation')}"
        )
    return {
        "job": job,
        "what": what,
        "counted": counted,
        "url": link["download_url"],
        "link_expires_at": link["download_expires_at"],
        "file": "CSV" if job.kind == "report" else "zip",
    }


def _many(n: int, thing: str) -> str:
    return f"{n:,} {thing}" if n == 1 else f"{n:,} {thing}s"
