"""Puller: `updated_since` loops over the upstream's sites, device groups, devices, rules,
components and maintenance master data (`sync.records`).

Each resource keeps a watermark, the (updated_at, id) of the newest row applied. A
pull asks for rows updated after the watermark minus an overlap, so rows sharing
a timestamp (or committed a little late upstream) are never missed; applying a
row twice changes nothing. Deleted rows are soft-deleted here. Devices pulled are
stored through the drivers' own device types, so their drivers pick them up
without a restart.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any, Final

from edge.models import now_ms
from edge.runtime import Runtime
from edge.store import Conflict, NotFound
from sync import records
from sync.devices import LOCAL, UPSTREAM, DeviceRegistry
from sync.upstream import Unreachable, Upstream, epoch_ms, message

log = logging.getLogger(__name__)

OVERLAP_MS: Final = 5_000
PAGE: Final = 500
# (resource, path): sites and groups first, so pulled devices find their site and group,
# and devices before the rules that watch them.
RESOURCES: Final = (("sites", "/sites"), ("device_groups", "/device-groups"),
                    ("devices", "/devices"), ("alert_rules", "/alert-rules"),
                    ("components", "/components"), *records.MASTER)  # fmt: skip
DEVICE_FIELDS: Final = (
    "name", "site_id", "group_id", "tags", "enabled", "connection", "profile", "movement",
)  # fmt: skip


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")


class Puller:
    """Applies the upstream's changes to the gateway's store."""

    def __init__(self, runtime: Runtime, upstream: Upstream, registry: DeviceRegistry) -> None:
        self._runtime = runtime
        self._store = runtime.store
        self._upstream = upstream
        self._registry = registry
        self.last_pull_ms: int | None = None
        self.applied = 0

    async def pull_all(self) -> None:
        """One pass over every resource; Unreachable if the upstream cannot answer."""
        for resource, path in RESOURCES:
            await self._pull(resource, path)
        self.last_pull_ms = now_ms()

    async def _pull(self, resource: str, path: str) -> None:
        mark = await asyncio.to_thread(self._store.pull_watermark, resource)
        params: dict[str, Any] = {"limit": PAGE}
        if mark is not None:
            params["updated_since"] = _iso(mark[0] - OVERLAP_MS)
        newest = mark
        held = False  # a row that must wait holds the watermark, so it is read again
        while True:
            response = await self._upstream.request("GET", path, params=params)
            if not response.is_success:
                raise Unreachable(f"GET {path}: {response.status_code} {message(response)}")
            page = response.json()
            for row in page["data"]:
                held = not await self._apply(resource, row) or held
                key = (epoch_ms(row["updated_at"]), row["id"])
                if not held:
                    newest = key if newest is None else max(newest, key)
            pagination = page["meta"]["pagination"]
            if not pagination["has_more"]:
                break
            params["cursor"] = pagination["next"]
        if newest is not None and newest != mark:
            await asyncio.to_thread(self._store.set_pull_watermark, resource, *newest)

    async def _apply(self, resource: str, row: dict[str, Any]) -> bool:
        """Apply one row; False if it must wait (a rule whose device is not here yet)."""
        org = self._store.organization.id
        if resource == "alert_rules":
            if not await asyncio.to_thread(self._store.upsert_rule, org, row):
                log.info("pulled rule %s waits for device %s", row["id"], row.get("device_id"))
                return False
            return True
        if resource == "components":
            return await self._apply_component(org, row)
        if resource in records.PULLED:
            return await records.apply(self._store, org, resource, row)
        if resource != "devices":
            await asyncio.to_thread(self._store.upsert_grouping, resource, org, row)
            return True
        if (await self._registry.known()).get(row["id"]) == LOCAL:
            return True  # our own device, registered upstream: the gateway's copy is the truth
        try:
            await self._apply_device(org, row)
        except (NotFound, Conflict, ValueError) as error:
            log.warning("pulled device %s not applied: %s", row["id"], error)
            return True
        self.applied += 1
        return True

    async def _apply_component(self, org: str, row: dict[str, Any]) -> bool:
        # Sensor ids differ on each side: the upstream's are translated through their keys.
        sensors = await self._upstream.request(
            "GET", "/sensors", params={"device_id": row["device_id"]}
        )
        keys = {s["id"]: s["key"] for s in sensors.json()["data"]} if sensors.is_success else {}
        wanted = [keys[s] for s in row.get("sensor_ids") or [] if s in keys]
        if await asyncio.to_thread(self._store.upsert_component, org, row, wanted):
            return True
        log.info("pulled component %s waits for device %s", row["id"], row["device_id"])
        return False

    async def _apply_device(self, org: str, row: dict[str, Any]) -> None:
        store = self._store
        try:
            local = await asyncio.to_thread(store.device, org, row["id"])
        except NotFound:
            local = None
        if row.get("deleted_at"):
            if local is not None:
                await asyncio.to_thread(store.delete_device, org, row["id"])
            return
        if local is not None:
            changes = {f: row[f] for f in DEVICE_FIELDS if f in row and row[f] != getattr(local, f)}
            if changes:
                await asyncio.to_thread(lambda: store.update_device(org, row["id"], **changes))
            return
        add = self._runtime.device_types.get(row["type"])
        if add is None:
            raise ValueError(f"devices of type {row['type']} are not supported here")
        sensors = await self._upstream.request("GET", "/sensors", params={"device_id": row["id"]})
        points = [s["config"] or {"key": s["key"], "unit": s["unit"], "interval_s": s["interval_s"]}
                  for s in sensors.json()["data"]] if sensors.is_success else []  # fmt: skip
        # Its movement settings, if any, come in the body: one transaction makes it whole.
        await asyncio.to_thread(add, store, org, {**row, "points": points})
        await self._registry.mark(row["id"], UPSTREAM)
        log.info("device %s (%s) pulled from upstream", row["id"], row["type"])
