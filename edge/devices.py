"""Devices that push their readings to the gateway (type `http`): validating and storing one."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from edge.models import Device, Owner, Point, org_of
from edge.store import Store


class _PointSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    key: Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")]
    unit: str | None = None
    interval_s: Annotated[float, msgspec.Meta(gt=0)] = 60.0


def add_http_device(store: Store, owner: Owner, body: dict[str, Any]) -> Device:
    """A device that pushes to /telemetry/ingest, with the metrics it may send as points."""
    org_id = org_of(owner)
    try:
        points = msgspec.convert(body.get("points") or [], list[_PointSpec])
    except msgspec.ValidationError as error:
        raise ValueError(f"points: {str(error).replace('`', '')}") from None
    return store.create_device(
        Device(
            id=body.get("id") or "",
            org_id=org_id,
            name=body["name"],
            type="http",
            site_id=body.get("site_id"),
            group_id=body.get("group_id"),
            tags=list(body.get("tags") or []),
            movement=body.get("movement"),
        ),
        owner,
        [Point(0, "", org_id, "", p.key, p.unit, "float64", p.interval_s) for p in points],
    )
