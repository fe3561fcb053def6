"""DeviceRegistry: which devices the upstream holds, and registering those born here.

A device added on the gateway (API, UI, an adopted BLE sensor) is registered upstream
with `POST /v1/devices` under the same id before any of its readings is pushed. It is
registered as an `http` device: to the upstream it is a device whose readings arrive
over the API, and the upstream must not try to reach it itself.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from edge.models import Device
from edge.store import NotFound, Store
from sync.upstream import Upstream, message

log = logging.getLogger(__name__)

LOCAL = "local"
UPSTREAM = "upstream"


class DeviceRegistry:
    """The devices known upstream (id -> origin), loaded once and kept current."""

    def __init__(self, store: Store, upstream: Upstream) -> None:
        self._store = store
        self._upstream = upstream
        self._known: dict[str, str] | None = None
        self._lock = asyncio.Lock()

    async def known(self) -> dict[str, str]:
        if self._known is None:
            self._known = await asyncio.to_thread(self._store.upstream_devices)
        return self._known

    async def mark(self, device_id: str, origin: str) -> None:
        await asyncio.to_thread(self._store.mark_upstream_device, device_id, origin)
        (await self.known())[device_id] = origin

    async def ensure(self, device_ids: set[str]) -> None:
        """Register upstream every device of `device_ids` it does not hold yet."""
        async with self._lock:  # concurrent batches must not register a device twice
            for device_id in sorted(device_ids - (await self.known()).keys()):
                await self._register(device_id)

    async def _register(self, device_id: str) -> None:
        found = await self._upstream.request("GET", f"/devices/{device_id}")
        if found.status_code == 200:
            await self.mark(device_id, LOCAL)
            return
        made = await self._upstream.request("POST", "/devices", body=await self._body(device_id))
        if made.status_code in (200, 201, 409):
            await self.mark(device_id, LOCAL)
            log.info("registered device %s upstream", device_id)
            return
        # Its readings will be refused and quarantined, where a technician sees why.
        log.warning("upstream refused to register device %s: %d %s", device_id,
                    made.status_code, message(made))  # fmt: skip

    async def _body(self, device_id: str) -> dict[str, Any]:
        org = self._store.organization.id
        try:
            device: Device | None = await asyncio.to_thread(self._store.device, org, device_id)
        except NotFound:
            device = None  # deleted here since its readings were taken
        points = await asyncio.to_thread(self._store.points, org, device_id)
        return {
            "id": device_id,
            "name": device.name if device else device_id,
            "type": "http",
            "tags": device.tags if device else [],
            "points": [{"key": p.key, "unit": p.unit} for p in points],
        }
