"""SQL over background jobs: report runs and exports, from request to file to expiry.

A job is a row, so it outlives the process: one queued or running when the
gateway stops is queued again at start (`requeue_running`) and run anew. A
job keeps the boundary of the key that asked for it and is generated within
it; a key sees the jobs made within its own boundary (an unlimited key sees
all of its organization's). Finishing a job records its `report.ready` or
`export.ready` event in the same transaction, so webhooks deliver it exactly
when the file is there.
"""

from __future__ import annotations

from typing import Any, Final

import apsw
import msgspec

from edge import ids
from edge.models import Boundary, now_ms
from edge.store import _events
from edge.store._catalog import NotFound, Refused, device, grouping

KINDS: Final = {"report": "rpt", "export": "exp"}
QUEUED, RUNNING, READY, FAILED, EXPIRED = "queued", "running", "ready", "failed", "expired"
STATUSES: Final = (QUEUED, RUNNING, READY, FAILED, EXPIRED)
READY_EVENTS: Final = {"report": "report.ready", "export": "export.ready"}
# A rough cost of one job, for the expected completion time a new job is answered with.
ESTIMATE_MS: Final = 5_000
# Runs cut short by the process ending (not by a stop, which hands the job back) before a job
# is failed instead of run again: a power cut twice in one run is rare, a job that exhausts the
# gateway's memory would otherwise crash it at every start.
MAX_INTERRUPTIONS: Final = 3

_COLUMNS: Final = (
    "id, org_id, kind, type, scope_type, scope_id, start_ms, end_ms, params, status, "
    "requested_by, boundary, error, file, size_bytes, counts, created_at, started_at, "
    "completed_at, expires_at, updated_at, interrupted"
)


class Job(msgspec.Struct, frozen=True):
    """A report run or an export: what was asked, how far it got, and its file once ready."""

    id: str
    org_id: str
    kind: str
    type: str
    scope_type: str | None
    scope_id: str | None
    start_ms: int
    end_ms: int
    params: dict[str, Any]
    status: str
    requested_by: str
    boundary: Boundary
    error: str | None = None
    file: str | None = None
    size_bytes: int | None = None
    counts: dict[str, int] = {}
    created_at: int = 0
    started_at: int | None = None
    completed_at: int | None = None
    expires_at: int | None = None
    updated_at: int = 0
    interrupted: int = 0


def _bounds(owner: Boundary) -> str:
    """A boundary as the JSON kept with a job (and compared to find a key's jobs)."""
    return msgspec.json.encode(
        {"group_ids": sorted(owner.group_ids), "customer_ids": sorted(owner.customer_ids)}
    ).decode()


def _job(row: tuple) -> Job:
    (id_, org, kind, type_, scope_type, scope_id, start, end, params, status, by, bounds, error,
     file, size, counts, created, started, completed, expires, updated, cut) = row  # fmt: skip
    limits = msgspec.json.decode(bounds)
    boundary = Boundary(org, tuple(limits.get("group_ids", ())),
                        tuple(limits.get("customer_ids", ())))  # fmt: skip
    return Job(id_, org, kind, type_, scope_type, scope_id, start, end, msgspec.json.decode(params),
               status, by, boundary, error, file, size, msgspec.json.decode(counts), created,
               started, completed, expires, updated, cut)  # fmt: skip


def _check_scope(
    conn: apsw.Connection, owner: Boundary, scope_type: str | None, scope_id: str | None
) -> None:
    """The scope must be a device or site the owner may see; else Refused (a bad request)."""
    try:
        if scope_type == "DEVICE":
            device(conn, owner, scope_id or "")
        elif scope_type == "SITE":
            grouping(conn, "sites", owner, scope_id or "")
    except NotFound as error:
        raise Refused(f"{error} that this key may see") from None


def create(
    conn: apsw.Connection,
    owner: Boundary,
    requested_by: str,
    kind: str,
    type_: str,
    scope: tuple[str | None, str | None],
    window: tuple[int, int],
    params: dict[str, Any],
) -> Job:
    """Queue a job; its scope (DEVICE or SITE and an id, or none) must be within the owner's
    boundary. `params` gains the expected completion time, from the jobs already waiting."""
    _check_scope(conn, owner, *scope)
    ts = now_ms()
    (ahead,) = conn.execute(
        "SELECT count(*) FROM jobs WHERE status IN ('queued', 'running')"
    ).fetchone()
    params = {**params, "expected_at": ts + (ahead + 1) * ESTIMATE_MS}
    job = Job(ids.new_id(KINDS[kind]), owner.org_id, kind, type_, *scope, *window, params, QUEUED,
              requested_by, owner, created_at=ts, updated_at=ts)  # fmt: skip
    conn.execute(
        f"INSERT INTO jobs ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, "
        "NULL, '{}', ?, NULL, NULL, NULL, ?, 0)",
        (job.id, job.org_id, kind, type_, *scope, *window, msgspec.json.encode(params).decode(),
         QUEUED, requested_by, _bounds(owner), ts, ts),
    )  # fmt: skip
    return job


def get(conn: apsw.Connection, owner: Boundary, kind: str, job_id: str) -> Job:
    """One of the jobs made within the owner's boundary, or NotFound."""
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM jobs WHERE org_id = ?1 AND kind = ?2 AND id = ?3 "
        "AND (?4 = ?5 OR boundary = ?4)",
        (owner.org_id, kind, job_id, _bounds(owner), _bounds(Boundary(owner.org_id))),
    ).fetchone()
    if row is None:
        raise NotFound(f"no {kind} {job_id}")
    return _job(row)


def by_id(conn: apsw.Connection, org_id: str, kind: str, job_id: str) -> Job:
    """A job of the org by id alone (for a signed download link, which carries no key)."""
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM jobs WHERE org_id = ? AND kind = ? AND id = ?",
        (org_id, kind, job_id),
    ).fetchone()
    if row is None:
        raise NotFound(f"no {kind} {job_id}")
    return _job(row)


def page(
    conn: apsw.Connection,
    owner: Boundary,
    kind: str,
    status: str | None,
    updated_since: int | None,
    after: tuple[int, str] | None,
    limit: int,
) -> list[Job]:
    """Newest first by creation; with `updated_since`, in (updated_at, id) order from it."""
    mine = (
        "org_id = ?1 AND kind = ?2 AND (?3 = ?4 OR boundary = ?3) AND (?5 IS NULL OR status = ?5)"
    )
    args = (owner.org_id, kind, _bounds(owner), _bounds(Boundary(owner.org_id)), status)
    if updated_since is None:
        after_ts, after_id = after if after is not None else (2**62, "~")
        rows = conn.execute(
            f"SELECT {_COLUMNS} FROM jobs WHERE {mine} AND (created_at, id) < (?6, ?7) "
            "ORDER BY created_at DESC, id DESC LIMIT ?8",
            (*args, after_ts, after_id, limit),
        )
    else:
        after_ts, after_id = after if after is not None else (-1, "")
        rows = conn.execute(
            f"SELECT {_COLUMNS} FROM jobs WHERE {mine} AND updated_at > ?6 "
            "AND (updated_at, id) > (?7, ?8) ORDER BY updated_at, id LIMIT ?9",
            (*args, updated_since, after_ts, after_id, limit),
        )
    return [_job(row) for row in rows]


def requeue_running(conn: apsw.Connection) -> tuple[list[Job], list[Job]]:
    """Jobs a process left running when it ended: each counts one more interruption and is
    queued again, or failed once it has been interrupted MAX_INTERRUPTIONS times. Returns
    (queued, failed)."""
    rows = conn.execute(f"SELECT {_COLUMNS} FROM jobs WHERE status = 'running'").fetchall()
    ts = now_ms()
    queued, failed = [], []
    for job in map(_job, rows):
        count = job.interrupted + 1
        at = max(ts, job.updated_at + 1)
        if count < MAX_INTERRUPTIONS:
            conn.execute(
                "UPDATE jobs SET status = 'queued', started_at = NULL, interrupted = ?, "
                "updated_at = ? WHERE id = ?",
                (count, at, job.id),
            )
            queued.append(msgspec.structs.replace(job, status=QUEUED, started_at=None,
                                                  interrupted=count, updated_at=at))  # fmt: skip
            continue
        error = (f"the gateway ended {count} times while this {job.kind} ran (a crash or a "
                 "power cut), so it is not run again; ask for a shorter window")  # fmt: skip
        conn.execute(
            "UPDATE jobs SET status = 'failed', error = ?, interrupted = ?, completed_at = ?, "
            "updated_at = ? WHERE id = ?",
            (error, count, at, at, job.id),
        )
        failed.append(msgspec.structs.replace(job, status=FAILED, error=error, interrupted=count,
                                              completed_at=at, updated_at=at))  # fmt: skip
    return queued, failed


def release(conn: apsw.Connection, job_id: str) -> Job:
    """Hand a running job back to the queue, uncounted: the runner was asked to stop."""
    current = _running(conn, job_id)
    ts = max(now_ms(), current.updated_at + 1)
    conn.execute(
        "UPDATE jobs SET status = 'queued', started_at = NULL, updated_at = ? WHERE id = ?",
        (ts, job_id),
    )
    return msgspec.structs.replace(current, status=QUEUED, started_at=None, updated_at=ts)


def claim(conn: apsw.Connection) -> Job | None:
    """The oldest queued job, now running; None if none waits."""
    # rowid breaks ties in insertion order: ids made in the same millisecond are not ordered.
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM jobs WHERE status = 'queued' ORDER BY created_at, rowid LIMIT 1"
    ).fetchone()
    if row is None:
        return None
    ts = max(now_ms(), row[-1] + 1)
    conn.execute(
        "UPDATE jobs SET status = 'running', started_at = ?, updated_at = ? WHERE id = ?",
        (ts, ts, row[0]),
    )
    return msgspec.structs.replace(_job(row), status=RUNNING, started_at=ts, updated_at=ts)


def finish(
    conn: apsw.Connection,
    job_id: str,
    file: str,
    size_bytes: int,
    counts: dict[str, int],
    keep_ms: int,
) -> Job:
    """Mark a running job ready with its file until `keep_ms` from now, and record its event."""
    current = _running(conn, job_id)
    ts = max(now_ms(), current.updated_at + 1)
    done = msgspec.structs.replace(current, status=READY, file=file, size_bytes=size_bytes,
                                   counts=counts, completed_at=ts, expires_at=ts + keep_ms,
                                   updated_at=ts)  # fmt: skip
    conn.execute(
        "UPDATE jobs SET status = 'ready', file = ?, size_bytes = ?, counts = ?, "
        "completed_at = ?, expires_at = ?, updated_at = ? WHERE id = ?",
        (file, size_bytes, msgspec.json.encode(counts).decode(), ts, done.expires_at, ts, job_id),
    )
    data = {f"{done.kind}_id": done.id, "type": done.type, "scope_type": done.scope_type,
            "scope_id": done.scope_id, "size_bytes": size_bytes, **counts,
            "expires_at_ms": done.expires_at}  # fmt: skip
    device_id = done.scope_id if done.scope_type == "DEVICE" else None
    row = _events.event_row(ids.new_id("evt"), done.org_id, READY_EVENTS[done.kind], "info",
                            f"{done.kind} {done.id} is ready", ts, device_id, data)  # fmt: skip
    _events.insert_events(conn, [row])
    return done


def fail(conn: apsw.Connection, job_id: str, error: str) -> Job:
    """Mark a running job failed, saying why."""
    current = _running(conn, job_id)
    ts = max(now_ms(), current.updated_at + 1)
    conn.execute(
        "UPDATE jobs SET status = 'failed', error = ?, completed_at = ?, updated_at = ? "
        "WHERE id = ?",
        (error, ts, ts, job_id),
    )
    return msgspec.structs.replace(current, status=FAILED, error=error, completed_at=ts,
                                   updated_at=ts)  # fmt: skip


def _running(conn: apsw.Connection, job_id: str) -> Job:
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM jobs WHERE id = ? AND status = 'running'", (job_id,)
    ).fetchone()
    if row is None:
        raise NotFound(f"no running job {job_id}")
    return _job(row)


def due_expiry(conn: apsw.Connection, now: int) -> list[Job]:
    """Ready jobs whose files have outlived their expiry."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM jobs WHERE status = 'ready' AND expires_at <= ?", (now,)
    )
    return [_job(row) for row in rows]


def mark_expired(conn: apsw.Connection, job_ids: list[str]) -> None:
    """Record that these jobs' files are gone."""
    ts = now_ms()
    conn.executemany(
        "UPDATE jobs SET status = 'expired', file = NULL, updated_at = max(?, updated_at + 1) "
        "WHERE id = ? AND status = 'ready'",
        [(ts, job_id) for job_id in job_ids],
    )


def files(conn: apsw.Connection) -> set[str]:
    """The files ready jobs hold: anything else in the jobs' directory is a leftover."""
    return {row[0] for row in conn.execute("SELECT file FROM jobs WHERE status = 'ready'")}
