"""Maintenance records across the uplink: master data (customers, vendors, parts, assets,
appointments) pulled by the puller's `updated_since` loops, and the service reports and
visits technicians make on the gateway pushed upstream exactly once.

A record made here waits in the store's outbox until the upstream answers its create.
It is sent under its own id, and the upstream answers a create of an id it holds with
the same fields by returning the stored record, so a resend after a crash or a lost
answer never makes a duplicate. A visit changed here goes again: its create meets the
older version upstream (409) and the change follows as a PATCH of every field. An
answer that blames the record (a 4xx) leaves it in the outbox, logged once, to be sent
again after a pause that doubles each time.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Final

from edge.maintenance import KINDS, Kind, Record
from edge.store import Refused, Store
from sync.upstream import Unreachable, Upstream, epoch_ms, message

log = logging.getLogger(__name__)

# (resource, path) for the puller, after devices: assets name devices and groups.
MASTER: Final = (("customers", "/customers"), ("vendors", "/vendors"),
                 ("parts", "/inventory/parts"), ("assets", "/assets"),
                 ("appointments", "/appointments"))  # fmt: skip
PULLED: Final = frozenset(resource for resource, _ in MASTER)
PUSHED: Final = {"service_visits": "/service-visits", "service_reports": "/service-reports"}
# A refused record is sent again after 1 s, doubling up to 5 min: what it waits for (an
# asset the upstream does not hold yet) may take a while, and must not cost a request
# per record every round meanwhile.
REFUSED_FIRST_S: Final = 1.0
# Records read from the outbox at a time: a round walks it all, page by page.
PAGE: Final = 100
REFUSED_MAX_S: Final = 300.0


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")


def body(kind: Kind, record: Record) -> dict[str, Any]:
    """A record as the upstream's create takes it: its id and fields, times in ISO-8601."""
    fields = {k: _iso(v) if k in kind.times and v is not None else v
              for k, v in record.fields.items()}  # fmt: skip
    return {"id": record.id, **fields}


def fields_of(kind: Kind, row: dict[str, Any]) -> dict[str, Any]:
    """A pulled row's fields of the kind, times in epoch ms."""
    return {name: epoch_ms(row[name]) if name in kind.times and row[name] else row[name]
            for name in kind.schema.__struct_fields__ if name in row}  # fmt: skip


async def apply(store: Store, org_id: str, resource: str, row: dict[str, Any]) -> bool:
    """Store one pulled row of master data; a row that does not fit is logged and skipped."""
    kind = KINDS[resource]
    try:
        await asyncio.to_thread(store.upsert_record, org_id, kind.name, row["id"],
                                fields_of(kind, row), bool(row.get("deleted_at")))  # fmt: skip
    except Refused as error:
        log.warning("pulled %s %s not applied: %s", kind.noun, row["id"], error)
    return True


class RecordPusher:
    """One pass at a time over the service reports and visits the upstream lacks."""

    def __init__(
        self, store: Store, upstream: Upstream, ensure: Callable[[set[str]], Awaitable[None]]
    ) -> None:
        self._store = store
        self._upstream = upstream
        self._ensure = ensure
        # Held after the upstream refused them: id -> (next attempt, monotonic; pause).
        self._held: dict[str, tuple[float, float]] = {}
        self.pushed = 0

    @property
    def refused(self) -> int:
        """How many records are held after the upstream refused them."""
        return len(self._held)

    async def round(self) -> None:
        """Push what waits, visits first (reports may name them); Unreachable if the
        upstream cannot answer."""
        after: tuple[int, str] | None = None
        while True:
            waiting = await asyncio.to_thread(self._store.unpushed_records, after, PAGE)
            for record in sorted(waiting, key=lambda r: r.kind != "service_visits"):
                if self._held.get(record.id, (0.0, 0.0))[0] > time.monotonic():
                    continue  # held records must not keep newer ones from going
                if await self._push(record):
                    await asyncio.to_thread(self._store.mark_record_pushed, record.id,
                                            record.version)  # fmt: skip
                    self._held.pop(record.id, None)
                    self.pushed += 1
            if len(waiting) < PAGE:
                return
            after = (waiting[-1].updated_at, waiting[-1].id)

    async def _push(self, record: Record) -> bool:
        kind = KINDS[record.kind]
        if record.fields.get("device_id"):
            await self._ensure({record.fields["device_id"]})  # born here: registered first
        response = await self._upstream.request("POST", PUSHED[kind.name],
                                                body=body(kind, record))  # fmt: skip
        if response.status_code == 409 and "patch" in kind.writes:
            # The upstream holds an older version: the change goes as a PATCH of every
            # field, which a resend repeats without effect.
            fields = body(kind, record)
            del fields["id"]
            response = await self._upstream.request("PATCH", f"{PUSHED[kind.name]}/{record.id}",
                                                    body=fields)  # fmt: skip
        if response.status_code in (200, 201):
            return True
        if response.status_code == 409:
            # The upstream holds other fields under this id: ours never change, so it is
            # not ours to overwrite; resending would only repeat the answer.
            log.warning("upstream holds %s %s with other fields", kind.noun, record.id)
            return True
        if response.status_code in (401, 403):
            raise Unreachable(f"POST {PUSHED[kind.name]}: {response.status_code} "
                              f"{message(response)}")  # fmt: skip
        pause = min(self._held.get(record.id, (0.0, REFUSED_FIRST_S / 2))[1] * 2, REFUSED_MAX_S)
        self._held[record.id] = (time.monotonic() + pause, pause)
        if pause == REFUSED_FIRST_S:
            log.warning("upstream refused %s %s: %d %s; kept to send again", kind.noun,
                        record.id, response.status_code, message(response))  # fmt: skip
        return False
