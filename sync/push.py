"""Pusher: follows the readings outbox to `POST /v1/telemetry/ingest`, losing and
duplicating nothing.

Each batch is a sequence range the store records before it is sent; its
Idempotency-Key is the gateway id plus that range, so a resend after a crash or
a timeout is answered from the upstream's record instead of being stored twice.
Several batches are in flight at once; the store's watermark passes a range only
when every range below it is acknowledged. A batch the upstream refuses (400,
413, 422) is split in halves until the refused readings stand alone; those go to
quarantine with the upstream's answer while the rest goes on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, Final

from edge.models import OutboxItem, Quality, QuarantinedReading, now_ms
from edge.store import NotFound, Store
from sync.upstream import Unreachable, Upstream, error_body, message

log = logging.getLogger(__name__)

# Answers that blame the readings sent (split, then quarantine what stands alone).
REFUSED: Final = frozenset({400, 413, 422})
# A concurrent request with the same Idempotency-Key is still being answered upstream.
IN_PROGRESS_WAIT_S: Final = 0.5
# Batches per round for each request in flight: rounds long enough that waiting for the
# slowest batch of one costs little.
BATCHES_PER_SLOT: Final = 4


def _iso(ms: int) -> str:
    seconds, millis = divmod(ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


def reading_body(item: OutboxItem | QuarantinedReading) -> dict[str, Any]:
    """A reading as seed 002's ingest takes it (defaults left out: fewer bytes)."""
    body: dict[str, Any] = {
        "device_id": item.device_id,
        "metric": item.metric,
        "ts": _iso(item.ts_ms),
        "value": item.value,
    }
    if item.quality is not Quality.GOOD:
        body["quality"] = item.quality.name.lower()
    if item.correction:
        body["correction"] = True
    return body


class Pusher:
    """Sends the outbox upstream, batch by batch; `round()` does one pass."""

    def __init__(
        self,
        store: Store,
        upstream: Upstream,
        batch_size: int,
        in_flight: int,
        register: Callable[[set[str]], Any],
    ) -> None:
        self._store = store
        self._upstream = upstream
        self._size = batch_size
        self._in_flight = in_flight
        self._register = register
        self.readings_sent = 0
        self.batches_sent = 0
        self.quarantined = 0
        self.last_success_ms: int | None = None

    async def round(self) -> bool:
        """Send the recorded batches and plan more, `in_flight` at a time; True if any were
        acknowledged. Unreachable if the upstream could not take them all (those left stay recorded
        and go again, unchanged)."""
        limit = self._in_flight * BATCHES_PER_SLOT
        batches = (await asyncio.to_thread(self._store.sync_pending))[:limit]
        if len(batches) < limit:
            batches += await asyncio.to_thread(
                self._store.sync_plan, self._size, limit - len(batches)
            )
        if not batches:
            await self._retry_quarantined()
            return False
        slots = asyncio.Semaphore(self._in_flight)
        acked: list[int] = []
        failed: list[Unreachable] = []

        async def send(first: int, last: int) -> None:
            async with slots:
                if failed:
                    return  # the upstream is failing: the rest waits for the next round
                try:
                    await self._send(first, last, acked)
                except Unreachable as error:
                    failed.append(error)

        try:
            await asyncio.gather(*(send(first, last) for first, last in batches))
        finally:
            # One transaction acknowledges the round; a crash before it only means the
            # batches go again, and the upstream answers them from its idempotency record.
            if acked:
                await asyncio.to_thread(self._store.sync_ack, *acked)
        if failed:
            raise failed[0]
        return bool(acked)

    async def _send(self, first: int, last: int, acked: list[int]) -> None:
        items = await asyncio.to_thread(self._store.sync_items, first, last)
        if not items:  # nothing left in the range (cannot happen while retention waits)
            acked.append(first)
            return
        await self._register({item.device_id for item in items})
        key = f"{self._store.gateway_id}:{first}-{last}"
        response = await self._upstream.request(
            "POST",
            "/telemetry/ingest",
            body={"readings": [reading_body(item) for item in items]},
            headers={"Idempotency-Key": key},
            compress=True,
        )
        status = response.status_code
        if 200 <= status < 300:
            acked.append(first)
            self.readings_sent += len(items)
            self.batches_sent += 1
            self.last_success_ms = now_ms()
            return
        if status == 409:  # the same key is in progress upstream: the batch goes again
            await asyncio.sleep(IN_PROGRESS_WAIT_S)
            return
        if status not in REFUSED:
            raise Unreachable(f"batch {key}: {status} {message(response)}")
        if len(items) > 1:
            halves = await asyncio.to_thread(self._store.sync_split, first, last)
            log.info("upstream refused batch %s (%d); split into %s", key, status, halves)
            for half in halves:
                await self._send(*half, acked)
            return
        moved, _ = await asyncio.to_thread(
            self._store.sync_quarantine, first, status, error_body(response)
        )
        self.quarantined += len(moved)
        log.warning("upstream refused reading seq %d (%d): quarantined", first, status)

    async def _retry_quarantined(self) -> None:
        """Send again what a technician asked to retry from quarantine."""
        for item in await asyncio.to_thread(self._store.quarantine_retries):
            await self._register({item.device_id})
            response = await self._upstream.request(
                "POST",
                "/telemetry/ingest",
                body={"readings": [reading_body(item)]},
                headers={"Idempotency-Key": f"{self._store.gateway_id}:q{item.seq}"},
            )
            body = None if response.is_success else error_body(response)
            try:
                await asyncio.to_thread(
                    self._store.quarantine_retried, item.id, response.status_code, body
                )
            except NotFound:
                continue  # discarded meanwhile
            if response.is_success:
                self.readings_sent += 1
