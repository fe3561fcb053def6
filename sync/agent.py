"""SyncAgent: runs the pusher and the puller, backs off while the uplink is down, and
reports its state (status page, /metrics, uplink lost/restored events).

With no `[sync] upstream_url` the agent idles: readings stay in the store, the
backlog grows, and nothing is dropped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from typing import Any, Final

from edge.models import now_ms
from edge.runtime import Runtime
from edge.stats import Sample
from sync.actions import ActionPusher
from sync.backoff import Backoff
from sync.devices import DeviceRegistry
from sync.pull import Puller
from sync.push import Pusher
from sync.records import RecordPusher
from sync.upstream import Unreachable, Upstream

log = logging.getLogger(__name__)

# The backlog count scans the unsynced readings: refreshed at most this often.
BACKLOG_EVERY_S: Final = 5.0


class SyncAgent:
    """Store-and-forward to the upstream, and the upstream's changes pulled back."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self._settings = runtime.settings.sync
        self._pusher: Pusher | None = None
        self._puller: Puller | None = None
        self._actions: ActionPusher | None = None
        self._records: RecordPusher | None = None
        self._upstream: Upstream | None = None
        self.state = "idle" if self._settings.upstream_url else "not_configured"
        self.offline_since_ms: int | None = None
        self.last_error: str | None = None
        self.last_error_ms: int | None = None
        self._backlog: tuple[int, int | None] = (0, None)
        self._backlog_at = -BACKLOG_EVERY_S
        self._failing: set[str] = set()  # "push", "pull": the parts the upstream fails

    async def run(self) -> None:
        """Push and pull until cancelled (idle forever without an upstream)."""
        if not self._settings.upstream_url:
            log.info("no [sync] upstream_url: readings are kept here until one is set")
            await asyncio.Event().wait()
        store = self._runtime.store
        upstream = Upstream(self._settings, store.gateway_id)
        registry = DeviceRegistry(store, upstream)
        self._upstream = upstream
        self._pusher = Pusher(store, upstream, self._settings.batch_size,
                              self._settings.in_flight, registry.ensure)  # fmt: skip
        self._puller = Puller(self._runtime, upstream, registry)
        self._actions = ActionPusher(store, upstream)
        self._records = RecordPusher(store, upstream, registry.ensure)
        try:
            await asyncio.gather(self._push_forever(), self._pull_forever())
        finally:
            await upstream.close()

    async def _push_forever(self) -> None:
        assert self._pusher is not None
        backoff = Backoff(self._settings.backoff_max_s)
        while True:
            await self._refresh_backlog()
            try:
                sent = await self._pusher.round()
            except Unreachable as error:
                await self._lost("push", str(error))
                wait = error.retry_after_s
                await asyncio.sleep(backoff.next_delay() if wait is None else wait)
                continue
            backoff.reset()
            await self._restored("push")
            if sent:
                continue
            try:
                assert self._actions is not None and self._records is not None
                await self._actions.round()
                await self._records.round()
            except Unreachable as error:
                await self._lost("push", str(error))
            await asyncio.sleep(self._settings.idle_s)

    async def _pull_forever(self) -> None:
        assert self._puller is not None
        while True:
            try:
                await self._puller.pull_all()
            except Unreachable as error:
                await self._lost("pull", str(error))
            else:
                await self._restored("pull")
            await asyncio.sleep(self._settings.pull_interval_s)

    async def _lost(self, part: str, error: str) -> None:
        """Pushes or pulls failed: the uplink is lost (once, however many parts fail)."""
        self._failing.add(part)
        self.last_error, self.last_error_ms = error, now_ms()
        if self.state == "offline":
            log.debug("upstream still unreachable: %s", error)
            return
        self.state, self.offline_since_ms = "offline", now_ms()
        log.warning("upstream unreachable: %s", error)
        message = f"The upstream is unreachable: {error}"
        await asyncio.to_thread(self._event, "sync.uplink_lost", "warning", message,
                                {"error": error})  # fmt: skip

    async def _restored(self, part: str) -> None:
        """Pushes or pulls work again: the uplink is back only once both do."""
        self._failing.discard(part)
        if self.state == "online" or self._failing:
            return
        was_offline, since = self.state == "offline", self.offline_since_ms
        self.state, self.offline_since_ms = "online", None
        if was_offline and since is not None:
            seconds = round((now_ms() - since) / 1000, 1)
            log.info("upstream reachable again after %.1f s", seconds)
            await asyncio.to_thread(self._event, "sync.uplink_restored", "info",
                                    f"The upstream is reachable again after {seconds} s.",
                                    {"outage_s": seconds})  # fmt: skip

    def _event(self, type_: str, severity: str, message: str, data: dict[str, Any]) -> None:
        store = self._runtime.store
        store.record_event(store.organization.id, type_, severity, message, data=data)

    async def _refresh_backlog(self) -> None:
        if time.monotonic() - self._backlog_at >= BACKLOG_EVERY_S:
            self._backlog = await asyncio.to_thread(self._runtime.store.backlog)
            self._backlog_at = time.monotonic()

    def status(self) -> dict[str, Any]:
        """The agent's state for the status page and `GET /admin/sync` (times in epoch ms)."""
        pusher, puller = self._pusher, self._puller
        count, oldest = self._backlog
        sent = pusher.readings_sent if pusher else 0
        wire = self._upstream.bytes_sent if self._upstream else 0
        return {
            "state": self.state,
            "upstream_url": self._settings.upstream_url or None,
            "gateway_id": self._runtime.store.gateway_id,
            "backlog_readings": count,
            # Estimated from what the upstream received so far, per reading, on the wire.
            "backlog_bytes": round(count * wire / sent) if sent else None,
            "oldest_unsynced_ms": oldest,
            "oldest_unsynced_age_s": round((now_ms() - oldest) / 1000, 1) if oldest else None,
            "last_success_ms": pusher.last_success_ms if pusher else None,
            "last_error": self.last_error,
            "last_error_ms": self.last_error_ms,
            "offline_since_ms": self.offline_since_ms,
            "readings_sent": sent,
            "batches_sent": pusher.batches_sent if pusher else 0,
            "bytes_sent": wire,
            "quarantined_readings": pusher.quarantined if pusher else 0,
            "last_pull_ms": puller.last_pull_ms if puller else None,
            "service_records_pushed": self._records.pushed if self._records else 0,
            "service_records_refused": self._records.refused if self._records else 0,
        }

    def samples(self) -> Iterable[Sample]:
        """Sync state for /metrics."""
        status = self.status()
        yield Sample("edge_sync_backlog_readings", "Readings not yet acknowledged upstream.",
                     "gauge", status["backlog_readings"])  # fmt: skip
        age = status["oldest_unsynced_age_s"]
        yield Sample("edge_sync_oldest_unsynced_seconds", "Age of the oldest unsynced reading.",
                     "gauge", age or 0.0)  # fmt: skip
        yield Sample("edge_sync_readings_sent_total", "Readings acknowledged by the upstream.",
                     "counter", status["readings_sent"])  # fmt: skip
        yield Sample("edge_sync_bytes_sent_total", "Request body bytes sent upstream.",
                     "counter", status["bytes_sent"])  # fmt: skip
        yield Sample("edge_sync_quarantined_total", "Readings the upstream refused.",
                     "counter", status["quarantined_readings"])  # fmt: skip
        yield Sample("edge_sync_online", "1 while the upstream answers, else 0.", "gauge",
                     1.0 if status["state"] == "online" else 0.0)  # fmt: skip
        last = status["last_success_ms"]
        yield Sample("edge_sync_last_success_timestamp_seconds",
                     "When the upstream last acknowledged a batch.", "gauge",
                     last / 1000 if last else 0.0)  # fmt: skip
