"""Domain records as API objects (snake_case; the dialect renames) and time parsing."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from edge.models import AlertRule, Component, Device
from edge.runtime import Runtime
from edge.store import Annotation, AnnotationClass, Channel, Webhook
from web.api.errors import ApiError


def iso(ms: int | None) -> str | None:
    """Epoch milliseconds as ISO-8601 UTC with a Z."""
    if ms is None:
        return None
    return (
        datetime.fromtimestamp(ms / 1000, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def epoch_ms(value: datetime | None, param: str) -> int | None:
    """An ISO-8601 query value as epoch milliseconds; a time without zone is refused."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ApiError(400, f"{param} needs a time zone (e.g. Z).", {"param": param})
    return int(value.timestamp() * 1000)


def etag(
    record: Device | Component | AlertRule | Webhook | Channel | Annotation | AnnotationClass,
) -> str:
    """A versioned record's entity tag: it changes with every write."""
    return f'"{record.id}.{record.version}"'


def device(runtime: Runtime, d: Device, sepolo: bool = False) -> dict[str, Any]:
    """A device as both clouds show it; Sepolo's clients also read deviceId and deviceName."""
    out: dict[str, Any] = {
        "id": d.id,
        "name": d.name,
        "type": d.type,
        "status": runtime.device_status(d),
        "site_id": d.site_id,
        "group_id": d.group_id,
        "tags": d.tags,
        "profile": d.profile,
        "connection": d.connection,
        "enabled": d.enabled,
        "movement": d.movement,
        "etag": etag(d),
        "created_at": iso(d.created_at),
        "updated_at": iso(d.updated_at),
        "deleted_at": iso(d.deleted_at),
    }
    if sepolo:
        out["device_id"] = d.id
        out["device_name"] = d.name
    return out
