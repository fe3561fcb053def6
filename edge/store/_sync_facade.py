"""The Store's part the sync agent uses: push batches, quarantine, pull watermarks."""

from __future__ import annotations

from typing import Any

from edge.models import OutboxItem, Page, QuarantinedReading
from edge.store import _sync
from edge.store._catalog import NotFound
from edge.store._facade import Facade


class SyncFacade(Facade):
    """Push batches, quarantine and pull state, for the sync agent."""

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
