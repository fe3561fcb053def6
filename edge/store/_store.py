"""The Store: the gateway's one door to its SQLite file.

Opening a file: `check_file` refuses anything that is not absent, empty or
ours; then the named migrations run through sqlite-utils on a stdlib sqlite3
connection, which is closed before apsw opens the writer and the readers. So
schema work never overlaps the run-time connections, and `edge db migrate`
is the same step run alone.

All writes go through the writer thread; reads borrow a connection from the
reader pool. Every read of tenant data takes the caller's organization id
and filters by it in SQL.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeVar

import apsw
import msgspec

from edge import ids
from edge.models import (
    Alarm,
    AlarmNote,
    AlertRule,
    ApiKey,
    Bucket,
    Component,
    Device,
    DeviceGroup,
    Event,
    Organization,
    OutboxItem,
    Owner,
    Page,
    Point,
    QuarantinedReading,
    Reading,
    Site,
    StoredReading,
    now_ms,
)
from edge.settings import Settings
from edge.store import (
    _alarms,
    _catalog,
    _components,
    _cursor,
    _events,
    _idempotency,
    _keys,
    _migrations,
    _readings,
    _sync,
    _webhooks,
)
from edge.store._catalog import DeviceFilter, NotFound
from edge.store._connections import ReaderPool
from edge.store._files import check_file
from edge.store._webhooks import DueDelivery, Webhook, WebhookDelivery
from edge.store._writer import Writer, WriterStats

log = logging.getLogger(__name__)

T = TypeVar("T")

# Bounds the page size of `range`; the API's own limit (500) is lower.
MAX_PAGE: Final = 10_000
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


class Store:
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

    def _write(self, fn: Callable[[apsw.Connection], T]) -> T:
        return self._writer.submit(fn).result()

    def _read(self, fn: Callable[[apsw.Connection], T]) -> T:
        with self._readers.connection() as conn:
            return fn(conn)

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
        found = self._read(lambda c: _catalog.find_points(c, owner, pairs_json))
        missing = pairs - found.keys()
        if not missing:
            return found, []
        # Only new metrics (or unknown devices) take a write transaction.
        more, unknown = self._write(lambda c: _catalog.point_ids(c, owner, missing, create))
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
            _catalog.point_in_org(conn, owner, point_id)
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
                _catalog.point_in_org(conn, owner, point_id)
            return _readings.range_points(conn, ids_json, start_ms, end_ms, after, n)

        return self._page(
            query, cursor, (int, int, int), lambda r: (r.point_id, r.ts_ms, r.seq), limit
        )

    def _updated_page(
        self,
        query: Callable[[apsw.Connection, Any, int], list[Any]],
        cursor: str | None,
        limit: int,
    ) -> Page:
        """A keyset page in (updated_at, id) order: the order of every `updated_since` listing."""
        return self._page(query, cursor, (int, str), lambda x: (x.updated_at, x.id), limit)

    def _page(
        self,
        query: Callable[[apsw.Connection, Any, int], list[Any]],
        cursor: str | None,
        key_types: tuple[type, ...],
        key: Callable[[Any], tuple[Any, ...]],
        limit: int,
    ) -> Page:
        """One keyset page: `query(conn, after_key, n)` returns rows after the cursor's key."""
        if not 1 <= limit <= MAX_PAGE:
            raise ValueError(f"limit must be between 1 and {MAX_PAGE}")
        after = _cursor.decode(cursor, *key_types) if cursor else None
        rows = self._read(lambda c: query(c, after, limit + 1))
        more = len(rows) > limit
        rows = rows[:limit]
        return Page(rows, _cursor.encode(*key(rows[-1])) if more else None)

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
            _catalog.point_in_org(conn, owner, point_id)
            return _readings.aggregate(conn, point_id, start_ms, end_ms, interval_s * 1000, fn)

        return self._read(query)

    def summary(self, owner: Owner, point_id: int, start_ms: int, end_ms: int) -> _readings.Summary:
        """Count, min, max, avg, sum, first and last of a point's good current readings."""
        _check_window(start_ms, end_ms)

        def query(conn: apsw.Connection) -> _readings.Summary:
            _catalog.point_in_org(conn, owner, point_id)
            return _readings.summary(conn, point_id, start_ms, end_ms)

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

    # The sync agent's state

    def sync_pending(self) -> list[tuple[int, int]]:
        """Push batches recorded but not acknowledged (resent first after a restart)."""
        return self._read(_sync.pending_batches)

    def sync_plan(self, size: int, count: int = 1) -> list[tuple[int, int]]:
        """Record up to `count` next push batches of up to `size` readings (sequence ranges)."""
        return self._write(lambda c: _sync.plan_batches(c, size, count))

    def sync_items(self, first: int, last: int) -> list[OutboxItem]:
        """The readings of a push batch."""
        return self._read(lambda c: _sync.batch_items(c, first, last))

    def sync_ack(self, *firsts: int) -> int:
        """The upstream holds the batches starting at `firsts`; returns the synced watermark."""
        return self._write(lambda c: _sync.ack_batches(c, list(firsts)))

    def sync_split(self, first: int, last: int) -> list[tuple[int, int]]:
        """Replace a refused batch by its halves, to isolate the readings refused."""
        return self._write(lambda c: _sync.split_batch(c, first, last))

    def sync_quarantine(
        self, first: int, status: int, error: Any
    ) -> tuple[list[QuarantinedReading], int]:
        """Quarantine a refused batch with the upstream's answer; the rest goes on."""
        return self._write(lambda c: _sync.quarantine_batch(c, first, status, error))

    def quarantine_page(self, org_id: str, cursor: str | None, limit: int = 100) -> Page:
        """The org's quarantined readings, a keyset page at a time."""
        return self._page(
            lambda c, after, n: _sync.quarantine_page(c, org_id, after, n),
            cursor,
            (str,),
            lambda q: (q.id,),
            limit,
        )

    def quarantined(self, org_id: str, item_id: str) -> QuarantinedReading:
        """One quarantined reading of the org, or NotFound."""
        found = self._read(lambda c: _sync.quarantined(c, org_id, item_id))
        if found is None:
            raise NotFound(f"no quarantined reading {item_id}")
        return found

    def quarantine_retry(self, org_id: str, item_id: str) -> None:
        """Ask the sync agent to send a quarantined reading again."""
        if not self._write(lambda c: _sync.request_retry(c, org_id, item_id)):
            raise NotFound(f"no quarantined reading {item_id}")

    def quarantine_retries(self, limit: int = 100) -> list[QuarantinedReading]:
        """Quarantined readings waiting to be sent again."""
        return self._read(lambda c: _sync.retry_requested(c, limit))

    def quarantine_retried(self, item_id: str, status: int | None, error: Any) -> None:
        """Record a retry's answer (accepted: the reading leaves quarantine)."""
        self._write(lambda c: _sync.retried(c, item_id, status, error))

    def quarantine_discard(self, org_id: str, item_id: str) -> QuarantinedReading:
        """Drop a quarantined reading for good."""
        found = self._write(lambda c: _sync.discard(c, org_id, item_id))
        if found is None:
            raise NotFound(f"no quarantined reading {item_id}")
        return found

    def quarantine_count(self) -> int:
        """How many readings are in quarantine."""
        return self._read(_sync.quarantine_count)

    def pull_watermark(self, resource: str) -> tuple[int, str] | None:
        """The (updated_at, id) of the last row pulled of a resource."""
        return self._read(lambda c: _sync.pull_watermark(c, resource))

    def set_pull_watermark(self, resource: str, updated_at: int, id_: str) -> None:
        self._write(lambda c: _sync.set_pull_watermark(c, resource, updated_at, id_))

    def upstream_devices(self) -> dict[str, str]:
        """Devices the upstream holds: id -> origin (`local`: registered by us; `upstream`)."""
        return self._read(_sync.upstream_devices)

    def mark_upstream_device(self, device_id: str, origin: str) -> None:
        """Remember that the upstream holds a device, and where it was born."""
        self._write(lambda c: _sync.mark_upstream_device(c, device_id, origin))

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

    # Organizations, sites, devices and points

    def organization_of(self, org_id: str) -> Organization:
        """An organization by id."""
        return self._read(lambda c: _catalog.organization(c, org_id))

    def create_site(self, owner: Owner, name: str, customer_id: str | None = None) -> Site:
        """A new site in the org, serving an external customer if named."""
        return self._write(lambda c: _catalog.create_site(c, owner, name, customer_id))

    def create_device_group(self, owner: Owner, name: str) -> DeviceGroup:
        """A new device group in the org."""
        return self._write(lambda c: _catalog.create_device_group(c, owner, name))

    def upsert_grouping(self, table: str, org_id: str, row: dict[str, Any]) -> None:
        """Create or update a site (`sites`) or device group (`device_groups`) by its id."""
        self._write(lambda c: _catalog.upsert_grouping(c, table, org_id, row))

    def grouping(self, table: str, owner: Owner, object_id: str) -> Site | DeviceGroup:
        """One site (`sites`) or device group (`device_groups`) of the org."""
        return self._read(lambda c: _catalog.grouping(c, table, owner, object_id))

    def grouping_page(
        self,
        table: str,
        owner: Owner,
        updated_since: int | None = None,
        cursor: str | None = None,
        limit: int = 100,
    ) -> Page:
        """A keyset page of sites (`sites`) or device groups (`device_groups`)."""
        return self._updated_page(
            lambda c, after, n: _catalog.grouping_page(c, table, owner, updated_since, after, n),
            cursor,
            limit,
        )

    def create_device(self, device: Device, owner: Owner | None = None) -> Device:
        """Register a device; its id is kept if given (devices synced from upstream keep theirs).

        A bounded `owner` must place it in one of its groups / at a site of its customers.
        """
        return self._write(lambda c: _catalog.create_device(c, device, owner))

    def device(self, owner: Owner, device_id: str) -> Device:
        """One of the org's (boundary's) devices, or NotFound."""
        return self._read(lambda c: _catalog.device(c, owner, device_id))

    def update_device(
        self, owner: Owner, device_id: str, expected_version: int | None = None, **changes: Any
    ) -> Device:
        """Change a device's fields; its version and updated_at advance (Conflict if stale)."""
        return self._write(
            lambda c: _catalog.update_device(c, owner, device_id, changes, expected_version)
        )

    def delete_device(self, owner: Owner, device_id: str) -> Device:
        """Soft-delete a device; it stays visible to `updated_since` listings as deleted."""
        return self._write(lambda c: _catalog.delete_device(c, owner, device_id))

    def device_page(
        self,
        owner: Owner,
        where: DeviceFilter | None = None,
        cursor: str | None = None,
        limit: int = 100,
    ) -> Page:
        """A keyset page of the org's devices in (updated_at, id) order."""
        where = where or DeviceFilter()
        return self._updated_page(
            lambda c, after, n: _catalog.device_page(c, owner, where, after, n), cursor, limit
        )

    def count_devices(self, owner: Owner) -> int:
        """How many live devices the org (boundary) has."""
        return self._read(lambda c: _catalog.count_devices(c, owner))

    def devices(self, org_id: str) -> list[Device]:
        """The org's devices."""
        return self._read(lambda c: _catalog.devices(c, org_id))

    def create_component(self, owner: Owner, component: Component) -> Component:
        """Add a part to one of the owner's devices (Refused if a sensor is not its point)."""
        return self._write(lambda c: _components.create(c, owner, component))

    def component(self, owner: Owner, component_id: str) -> Component:
        """One live component of the owner's devices, or NotFound."""
        return self._read(lambda c: _components.get(c, owner, component_id))

    def component_page(
        self,
        owner: Owner,
        device_id: str | None = None,
        updated_since: int | None = None,
        cursor: str | None = None,
        limit: int = 100,
    ) -> Page:
        """A keyset page of components in (updated_at, id) order."""
        return self._updated_page(
            lambda c, after, n: _components.page(c, owner, device_id, updated_since, after, n),
            cursor,
            limit,
        )

    def update_component(
        self, owner: Owner, component_id: str, expected_version: int | None = None, **changes: Any
    ) -> Component:
        """Change a component's fields; Conflict if `expected_version` is stale."""
        return self._write(
            lambda c: _components.update(c, owner, component_id, changes, expected_version)
        )

    def upsert_component(self, org_id: str, row: dict[str, Any], sensor_keys: list[str]) -> bool:
        """Create or update a component pulled from the upstream (its sensors by key); False
        if its device is not here yet."""
        return self._write(lambda c: _components.upsert(c, org_id, row, sensor_keys))

    def delete_component(self, owner: Owner, component_id: str) -> Component:
        """Soft-delete a component."""
        return self._write(lambda c: _components.delete(c, owner, component_id))

    def create_points(self, org_id: str, points: list[Point]) -> list[Point]:
        """Add points to the org's devices; they may receive readings once this returns."""
        created = self._write(lambda c: _catalog.create_points(c, org_id, points))
        self._writer.known_points.update(p.id for p in created)
        return created

    def points(self, owner: Owner, device_id: str | None = None) -> list[Point]:
        """The org's (boundary's) points, of one device if given."""
        return self._read(lambda c: _catalog.points(c, owner, device_id))

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

    # Alert rules and alarms

    def on_commit(self, listener: Callable[[Sequence[Reading]], None]) -> None:
        """Call `listener` from the writer thread with the readings of each commit (it must
        return at once: hand the readings over, do not work in it)."""
        self._writer.listeners.append(listener)

    def create_rule(self, owner: Owner, rule: AlertRule) -> AlertRule:
        """Store an alert rule (validated by the caller) for a device the owner may see."""
        made = self._write(lambda c: _alarms.create_rule(c, owner, rule))
        self.rules_version += 1
        return made

    def rule(self, owner: Owner, rule_id: str) -> AlertRule:
        """One live alert rule, or NotFound."""
        return self._read(lambda c: _alarms.rule(c, owner, rule_id))

    def rule_page(
        self,
        owner: Owner,
        updated_since: int | None = None,
        cursor: str | None = None,
        limit: int = 100,
    ) -> Page:
        """Alert rules in (updated_at, id) order."""
        return self._updated_page(
            lambda c, after, n: _alarms.rule_page(c, owner, updated_since, after, n), cursor, limit
        )

    def update_rule(
        self,
        owner: Owner,
        rule_id: str,
        changes: dict[str, Any],
        expected_version: int | None,
        check: Callable[[AlertRule], None],
    ) -> AlertRule:
        """Change a rule; `check` validates the result (Refused), Conflict if stale."""
        updated = self._write(
            lambda c: _alarms.update_rule(c, owner, rule_id, changes, expected_version, check)
        )
        self.rules_version += 1
        return updated

    def delete_rule(self, owner: Owner, rule_id: str) -> AlertRule:
        """Soft-delete a rule and clear its active alarm."""
        deleted = self._write(lambda c: _alarms.delete_rule(c, owner, rule_id))
        self.rules_version += 1
        return deleted

    def live_rules(self) -> list[AlertRule]:
        """Every enabled rule of every organization."""
        return self._read(_alarms.live_rules)

    def active_rule_ids(self) -> set[str]:
        """Rules that have an active alarm."""
        return self._read(_alarms.active_rule_ids)

    def raise_alarm(
        self, rule: AlertRule, message: str, value: float | None, ts: int
    ) -> Alarm | None:
        """Open the rule's alarm (None if one is active already)."""
        return self._write(lambda c: _alarms.raise_alarm(c, rule, message, value, ts))

    def clear_rule_alarm(self, rule: AlertRule, message: str, ts: int) -> Alarm | None:
        """Close the rule's active alarm, its condition having cleared."""
        return self._write(lambda c: _alarms.clear_rule(c, rule, message, ts))

    def alarm(self, owner: Owner, alarm_id: str) -> Alarm:
        """One alarm (by its id or its event's) with its audit trail."""
        return self._read(lambda c: _alarms.alarm(c, owner, alarm_id))

    def alarm_page(
        self,
        owner: Owner,
        state: str | None = None,
        device_id: str | None = None,
        window: tuple[int | None, int | None] = (None, None),
        cursor: str | None = None,
        limit: int = 100,
        rule_id: str | None = None,
    ) -> Page:
        """Alarms newest first, by state (active, acknowledged, cleared), device, window, rule."""
        return self._page(
            lambda c, after, n: _alarms.alarm_page(
                c, owner, state, device_id, rule_id, window, after, n
            ),
            cursor,
            (int, str),
            lambda a: (a.raised_at, a.id),
            limit,
        )

    def acknowledge_alarm(
        self, owner: Owner, alarm_id: str, actor: str, text: str | None = None
    ) -> Alarm:
        """Acknowledge an alarm; Refused if it was already."""
        return self._write(lambda c: _alarms.acknowledge(c, owner, alarm_id, actor, text))

    def clear_alarm(
        self, owner: Owner, alarm_id: str, actor: str, text: str | None = None
    ) -> Alarm:
        """Clear an alarm by hand; Refused if it is cleared already."""
        return self._write(lambda c: _alarms.clear(c, owner, alarm_id, actor, text, now_ms()))

    def comment_alarm(self, owner: Owner, alarm_id: str, actor: str, text: str) -> Alarm:
        """Add an operator's note to an alarm's trail."""
        return self._write(lambda c: _alarms.comment(c, owner, alarm_id, actor, text))

    def unsynced_alarm_actions(self, limit: int = 100) -> list[tuple[AlarmNote, Alarm]]:
        """People's alarm actions (ack, clear, comment) not yet carried upstream."""
        return self._read(lambda c: _alarms.unsynced_actions(c, limit))

    def mark_alarm_action_synced(self, note_id: str) -> None:
        self._write(lambda c: _alarms.mark_action_synced(c, note_id))

    def upsert_rule(self, org_id: str, row: dict[str, Any]) -> bool:
        """Create or update a rule pulled from the upstream; False if its device is not here."""
        applied = self._write(lambda c: _alarms.upsert_rule(c, org_id, row))
        self.rules_version += 1
        return applied

    def events(self, org_id: str, limit: int = 100) -> list[Event]:
        """The org's newest events."""
        return self._read(lambda c: _events.recent(c, org_id, limit))

    # Webhooks

    def create_webhook(
        self, org_id: str, url: str, events: list[str], description: str | None = None
    ) -> tuple[Webhook, str]:
        """A new webhook and its signing secret (Refused for a bad url or unknown events)."""
        return self._write(lambda c: _webhooks.create(c, org_id, url, events, description))

    def webhook(self, org_id: str, webhook_id: str) -> Webhook:
        """One live webhook of the org, or NotFound."""
        return self._read(lambda c: _webhooks.get(c, org_id, webhook_id))

    def webhook_page(
        self,
        org_id: str,
        updated_since: int | None = None,
        cursor: str | None = None,
        limit: int = 100,
    ) -> Page:
        """A keyset page of the org's webhooks in (updated_at, id) order."""
        return self._updated_page(
            lambda c, after, n: _webhooks.page(c, org_id, updated_since, after, n), cursor, limit
        )

    def update_webhook(
        self,
        org_id: str,
        webhook_id: str,
        expected_version: int | None = None,
        rotate_secret: bool = False,
        **changes: Any,
    ) -> tuple[Webhook, str | None]:
        """Change a webhook (Conflict if stale); with `rotate_secret`, also its new secret."""
        return self._write(
            lambda c: _webhooks.update(
                c, org_id, webhook_id, changes, expected_version, rotate_secret
            )
        )

    def delete_webhook(self, org_id: str, webhook_id: str) -> Webhook:
        """Soft-delete a webhook; its pending deliveries fail."""
        return self._write(lambda c: _webhooks.delete(c, org_id, webhook_id))

    def queue_webhook_test(self, org_id: str, webhook_id: str) -> WebhookDelivery:
        """Queue a `webhook.test` delivery to this webhook (Conflict if it is disabled)."""
        return self._write(lambda c: _webhooks.queue_test(c, org_id, webhook_id))

    def webhook_deliveries(
        self, org_id: str, webhook_id: str, cursor: str | None = None, limit: int = 100
    ) -> Page:
        """A keyset page of a webhook's deliveries, newest first."""
        return self._page(
            lambda c, after, n: _webhooks.deliveries(c, org_id, webhook_id, after, n),
            cursor,
            (int,),
            lambda d: (d.seq,),
            limit,
        )

    def webhook_delivery(self, org_id: str, delivery_id: str) -> WebhookDelivery:
        """One delivery of the org, or NotFound."""
        return self._read(lambda c: _webhooks.delivery(c, org_id, delivery_id))

    def fan_out_webhook_events(self, limit: int) -> int:
        """Turn up to `limit` newly recorded events into deliveries; returns the events read."""
        if not self._read(_webhooks.events_waiting):
            return 0
        return self._write(lambda c: _webhooks.fan_out(c, limit))

    def due_webhook_deliveries(
        self, now: int, url: str | None = None, limit: int = 100
    ) -> list[DueDelivery]:
        """Each URL's next delivery (or `url`'s) if it is due, with the secret to sign it."""
        return self._read(lambda c: _webhooks.due(c, now, url, limit))

    def webhook_attempted(
        self,
        delivery_id: str,
        status: str,
        status_code: int | None = None,
        error: str | None = None,
        next_attempt_at: int | None = None,
    ) -> None:
        """Record an attempt: `status` delivered, failed, or pending until `next_attempt_at`."""
        self._write(
            lambda c: _webhooks.attempted(
                c, delivery_id, status, status_code, error, next_attempt_at
            )
        )

    def prune_webhook_deliveries(self, before: int) -> int:
        """Drop delivered and failed deliveries last changed before `before`."""
        return self._write(lambda c: _webhooks.prune(c, before))

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
