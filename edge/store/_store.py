"""The Store: the gateway's one door to its SQLite file.

Opening a file: `check_file` refuses anything that is not absent, empty or
ours; then the named migrations run through sqlite-utils on a stdlib sqlite3
connection, which is closed before apsw opens the writer and the readers. So
schema work never overlaps the run-time connections, and `edge db migrate`
is the same step run alone.

All writes go through the writer thread; reads borrow a connection from the
reader pool (`_facade`). The Store's methods live here (readings, outbox,
events, keys, health) and in its parts: `_catalog_facade`, `_sync_facade`,
`_alarm_facade`, `_webhook_facade`, `_job_facade`, `_service_facade`. Every read of tenant
data takes the caller's organization id and filters by it in SQL.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import apsw
import msgspec

from edge import ids
from edge.models import (
    ApiKey,
    Bucket,
    Event,
    OutboxItem,
    Owner,
    Page,
    Reading,
    StoredReading,
    now_ms,
)
from edge.movements import Window
from edge.settings import Settings
from edge.store import (
    _catalog,
    _events,
    _idempotency,
    _keys,
    _migrations,
    _movements,
    _points,
    _readings,
    _sync,
)
from edge.store._alarm_facade import AlarmFacade
from edge.store._catalog_facade import CatalogFacade
from edge.store._connections import ReaderPool
from edge.store._files import check_file
from edge.store._job_facade import JobFacade
from edge.store._service_facade import ServiceFacade
from edge.store._sync_facade import SyncFacade
from edge.store._user_facade import UserFacade
from edge.store._webhook_facade import WebhookFacade
from edge.store._writer import Writer, WriterStats

log = logging.getLogger(__name__)

# Readings deleted per retention transaction, so ingest never waits long behind it.
RETENTION_CHUNK: Final = 20_000
# Idempotency-Key answers are replayed for a day, as the clouds do.
IDEMPOTENCY_KEEP_MS: Final = 86_400_000
# How long /readyz waits for the writer to take a no-op transaction.
READY_PROBE_S: Final = 2.0


@dataclass(frozen=True, slots=True)
class IdempotentAnswer:
    """The answer to record for a request sent with an Idempotency-Key."""

    key_id: str
    idem_key: str
    request_hash: str
    status: int
    body: bytes


@dataclass(frozen=True, slots=True)
class StoreStats:
    """Sizes and counters for /metrics, `edge db stats` and the UI."""

    path: str
    file_bytes: int
    wal_bytes: int
    last_seq: int
    synced_seq: int
    queued_readings: int
    writer: WriterStats


class Store(
    CatalogFacade, SyncFacade, AlarmFacade, WebhookFacade, JobFacade, ServiceFacade, UserFacade
):
    """The gateway's database; use `Store.open` and `close`."""

    def __init__(self, path: Path, settings: Settings) -> None:
        self.path = path
        self._settings = settings
        self._writer = Writer(path, settings.store, settings.writer, system_org="")
        # Bumped by every rule change, so the alarm engine re-reads rules before the next
        # reading rather than on its next timed reload.
        self.rules_version = 0
        self._readers = ReaderPool(path, settings.store)
        try:
            self.organization = self._write(
                lambda c: _catalog.ensure_organization(c, settings.gateway.organization)
            )
            # Made now, not on first use: status pages must never wait for the writer.
            self.gateway_id: str = self._write(_sync.gateway_id)
        except BaseException:
            self.close()
            raise
        self._writer.system_org = self.organization.id

    @classmethod
    def open(cls, settings: Settings) -> Store:
        """Check and migrate the file in `settings.data_dir`, then open it."""
        path = settings.database_path
        path.parent.mkdir(parents=True, exist_ok=True)
        check_file(path)
        applied = _migrations.migrate(path)
        if applied:
            log.info("database %s migrated: %s", path, ", ".join(applied))
        return cls(path, settings)

    def close(self, timeout: float = 10.0) -> bool:
        """Commit what is queued and close every connection; False if writes were lost."""
        flushed = self._writer.close(timeout)
        self._readers.close()
        return flushed

    # Readings

    def append_readings(self, readings: Sequence[Reading]) -> range:
        """Store readings; returns their sequence numbers once they are committed."""
        if not readings:
            return range(0)
        return self._writer.submit_readings(readings).result()

    def submit_readings(self, readings: Sequence[Reading]) -> Future[range]:
        """Queue readings without waiting; the future resolves once they are committed.

        Raises BacklogFull, UnknownPoint or StoreClosed at once instead of queueing.
        """
        return self._writer.submit_readings(readings)

    async def append_readings_async(
        self, readings: Sequence[Reading], idempotency: IdempotentAnswer | None = None
    ) -> range:
        """`append_readings` for the event loop: awaits the commit without blocking the loop.

        With `idempotency`, the answer is recorded in the readings' own transaction, so a
        replayed request finds it exactly when the readings are there.
        """
        if idempotency is None:
            if not readings:
                return range(0)
            return await asyncio.wrap_future(self._writer.submit_readings(readings))
        a = idempotency

        def record(conn: apsw.Connection) -> None:
            _idempotency.record(conn, a.key_id, a.idem_key, a.request_hash, a.status, a.body)

        return await asyncio.wrap_future(self._writer.submit_readings(readings, record))

    def idempotent_answer(self, key_id: str, idem_key: str) -> tuple[str, int, bytes] | None:
        """(request hash, status, body) recorded for this key's Idempotency-Key, if any."""
        return self._read(lambda c: _idempotency.answer(c, key_id, idem_key))

    def point_ids(
        self, owner: Owner, pairs: set[tuple[str, str]], create: bool = True
    ) -> tuple[dict[tuple[str, str], int], list[tuple[str, str]]]:
        """Point ids for (device id, metric) pairs; missing metrics of live devices are added."""
        pairs_json = msgspec.json.encode(sorted(pairs)).decode()
        found = self._read(lambda c: _points.find_points(c, owner, pairs_json))
        missing = pairs - found.keys()
        if not missing:
            return found, []
        # Only new metrics (or unknown devices) take a write transaction.
        more, unknown = self._write(lambda c: _points.point_ids(c, owner, missing, create))
        self._writer.known_points.update(more.values())
        return {**found, **more}, unknown

    def latest(self, org_id: str, point_ids: Sequence[int]) -> dict[int, StoredReading]:
        """The newest current reading of each of the org's points that has one."""
        ids_json = msgspec.json.encode(list(point_ids)).decode()
        rows = self._read(lambda c: _readings.latest(c, org_id, ids_json))
        return {r.point_id: r for r in rows}

    def range(
        self,
        owner: Owner,
        point_id: int,
        start_ms: int,
        end_ms: int,
        cursor: str | None = None,
        limit: int = 500,
    ) -> Page:
        """Current readings of a point in [start, end), oldest first, a keyset page at a time."""
        _check_window(start_ms, end_ms)

        def query(conn: apsw.Connection, after: Any, n: int) -> list[StoredReading]:
            _points.point_in_org(conn, owner, point_id)
            return _readings.range_(conn, point_id, start_ms, end_ms, after, n)

        return self._page(query, cursor, (int, int), lambda r: (r.ts_ms, r.seq), limit)

    def device_range(
        self,
        owner: Owner,
        point_ids: Sequence[int],
        start_ms: int,
        end_ms: int,
        cursor: str | None = None,
        limit: int = 500,
    ) -> Page:
        """Current readings of several of the org's points in [start, end), point by point."""
        _check_window(start_ms, end_ms)
        ids_json = msgspec.json.encode(sorted(point_ids)).decode()

        def query(conn: apsw.Connection, after: Any, n: int) -> list[StoredReading]:
            for point_id in point_ids:
                _points.point_in_org(conn, owner, point_id)
            return _readings.range_points(conn, ids_json, start_ms, end_ms, after, n)

        return self._page(
            query, cursor, (int, int, int), lambda r: (r.point_id, r.ts_ms, r.seq), limit
        )

    def aggregate(
        self, owner: Owner, point_id: int, start_ms: int, end_ms: int, interval_s: int, fn: str
    ) -> list[Bucket]:
        """`fn` (avg, min, max, sum, count, p95, p99) of good readings per interval."""
        _check_window(start_ms, end_ms)
        if fn not in _readings.AGGREGATES:
            raise ValueError(f"unknown aggregate {fn!r}; one of {', '.join(_readings.AGGREGATES)}")
        if interval_s < 1:
            raise ValueError("interval must be at least 1 s")

        def query(conn: apsw.Connection) -> list[Bucket]:
            _points.point_in_org(conn, owner, point_id)
            return _readings.aggregate(conn, point_id, start_ms, end_ms, interval_s * 1000, fn)

        return self._read(query)

    def summary(self, owner: Owner, point_id: int, start_ms: int, end_ms: int) -> _readings.Summary:
        """Count, min, max, avg, sum, first and last of a point's good current readings."""
        _check_window(start_ms, end_ms)

        def query(conn: apsw.Connection) -> _readings.Summary:
            _points.point_in_org(conn, owner, point_id)
            return _readings.summary(conn, point_id, start_ms, end_ms)

        return self._read(query)

    def movement_windows(
        self, owner: Owner, point_id: int, start_ms: int, end_ms: int, on: float, off: float
    ) -> list[Window]:
        """Runs of a point's readings at or above `on` (until below `off`) that start in
        [start, end), each followed to its end; see `edge.movements`."""

        def query(conn: apsw.Connection) -> list[Window]:
            _points.point_in_org(conn, owner, point_id)
            return _movements.windows(conn, point_id, start_ms, end_ms, on, off)

        return self._read(query)

    # Outbox and retention

    def outbox_batch(self, after_seq: int, limit: int) -> list[OutboxItem]:
        """Committed readings after `after_seq`, in sequence order, for the sync agent."""
        return self._read(lambda c: _readings.outbox_batch(c, after_seq, limit))

    def mark_synced(self, seq: int) -> int:
        """Record that the upstream holds every reading up to `seq`."""
        return self._write(lambda c: _readings.mark_synced(c, seq))

    def synced_seq(self) -> int:
        """The synced watermark."""
        return self._read(_readings.synced_seq)

    def backlog(self) -> tuple[int, int | None]:
        """Unsynced readings and the timestamp of the oldest one."""
        return self._read(_readings.backlog)

    def apply_retention(self, days: int, now: int | None = None) -> int:
        """Drop synced readings older than `days`; unsynced ones are kept whatever their age."""
        now = now_ms() if now is None else now
        self._write(lambda c: _idempotency.forget_before(c, now - IDEMPOTENCY_KEEP_MS))
        if days <= 0:
            return 0
        cutoff = now - days * 86_400_000
        dropped = 0
        while True:
            n = self._write(lambda c: _readings.drop_synced_before(c, cutoff, RETENTION_CHUNK))
            dropped += n
            if n < RETENTION_CHUNK:
                return dropped

    # Health and maintenance

    def integrity_check(self) -> list[str]:
        """SQLite's integrity check; ['ok'] when the file is sound."""
        return self._read(lambda c: [row[0] for row in c.execute("PRAGMA integrity_check")])

    @property
    def backlogged(self) -> bool:
        """True while more than half of `[writer] queue_max` readings wait to be committed."""
        return self._writer.queued_readings * 2 > self._settings.writer.queue_max

    @property
    def disk_full(self) -> bool:
        """True while the disk refuses the writer's transactions."""
        return self._writer.stats.disk_full_since_ms is not None

    def writable(self) -> bool:
        """True when the writer takes a transaction promptly and the disk accepts writes."""
        if self.disk_full:
            return False
        try:
            self._writer.submit(lambda c: None).result(timeout=READY_PROBE_S)
        except Exception:
            return False
        return True

    def stats(self) -> StoreStats:
        """File sizes, sequence watermarks, queue depth and writer counters."""
        wal = self.path.with_name(self.path.name + "-wal")
        return StoreStats(
            path=str(self.path),
            file_bytes=_size(self.path),
            wal_bytes=_size(wal),
            last_seq=self._writer.next_seq - 1,
            synced_seq=self.synced_seq(),
            queued_readings=self._writer.queued_readings,
            writer=self._writer.stats,
        )

    # Events

    def record_event(
        self,
        org_id: str,
        type_: str,
        severity: str,
        message: str,
        device_id: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> Event:
        """Record an event for technicians to see."""
        event = Event(
            ids.new_id("evt"), org_id, type_, severity, message, now_ms(), device_id, data or {}
        )
        row = _events.event_row(
            event.id, org_id, type_, severity, message, event.ts_ms, device_id, data
        )
        self._write(lambda c: _events.insert_events(c, [row]))
        return event

    def event_page(
        self, owner: Owner, where: dict[str, Any], cursor: str | None, limit: int = 100
    ) -> Page:
        """Events newest first; `where` may hold type, severity, device_id, acknowledged
        (bool), from and to (epoch ms)."""
        return self._page(
            lambda c, after, n: _events.page(c, _catalog.reach(owner), where, after, n),
            cursor,
            (int, str),
            lambda e: (e.ts_ms, e.id),
            limit,
        )

    def events(self, org_id: str, limit: int = 100) -> list[Event]:
        """The org's newest events."""
        return self._read(lambda c: _events.recent(c, org_id, limit))

    # API keys

    def create_api_key(
        self,
        org_id: str,
        name: str,
        scopes: list[str],
        device_id: str | None = None,
        *,
        groups: Sequence[str] = (),
        customers: Sequence[str] = (),
    ) -> tuple[ApiKey, str]:
        """A new key and its secret; the secret is not stored and cannot be shown again.

        `groups` / `customers` limit the key to devices in those device groups / at sites of
        those customers (each group must be the org's).
        """

        def create(conn: apsw.Connection) -> tuple[ApiKey, str]:
            for group in groups:
                _catalog.grouping(conn, "device_groups", org_id, group)
            return _keys.create(conn, org_id, name, scopes, device_id, groups, customers)

        return self._write(create)

    def create_registration_token(self, org_id: str, device_id: str, expires_at: int) -> str:
        """A one-time token that a device exchanges for its own credential."""
        return self._write(
            lambda c: (
                _catalog.device(c, org_id, device_id),
                _keys.create_registration(c, org_id, device_id, expires_at),
            )[1]
        )

    def provision(self, token: str, scopes: list[str]) -> tuple[ApiKey, str] | None:
        """Exchange an unused, unexpired token for a key limited to its device; else None."""

        def exchange(conn: apsw.Connection) -> tuple[ApiKey, str] | None:
            found = _keys.redeem_registration(conn, token, now_ms())
            if found is None:
                return None
            org_id, device_id = found
            return _keys.create(conn, org_id, f"device {device_id}", scopes, device_id)

        return self._write(exchange)

    def api_key(self, secret: str) -> ApiKey | None:
        """The live key with this secret."""
        return self._read(lambda c: _keys.by_secret(c, secret))

    def touch_api_key(self, key_id: str) -> None:
        """Record that a key was just used."""
        self._write(lambda c: _keys.touch(c, key_id, now_ms()))

    def api_keys(self, org_id: str) -> list[ApiKey]:
        """The org's keys (records only; secrets are never stored)."""
        return self._read(lambda c: _keys.of_org(c, org_id))

    def revoke_api_key(self, org_id: str, key_id: str) -> bool:
        """Revoke one of the org's keys."""
        return self._write(lambda c: _keys.revoke(c, org_id, key_id))


def _check_window(start_ms: int, end_ms: int) -> None:
    if end_ms <= start_ms:
        raise ValueError("the window's end must be after its start")


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0
