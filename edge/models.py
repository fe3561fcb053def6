"""The domain's frozen records: readings, points, devices, topology, events, keys.

Times are integer milliseconds since the Unix epoch (UTC) throughout the core;
the web layer renders them as ISO-8601.
"""

from __future__ import annotations

import enum
import time
from typing import Any

import msgspec


def now_ms() -> int:
    """Wall-clock time in epoch milliseconds."""
    return time.time_ns() // 1_000_000


class Quality(enum.IntEnum):
    """How trustworthy a reading is; anything but GOOD carries no value."""

    GOOD = 0
    STALE = 1
    COMM_ERROR = 2
    DEVICE_EXCEPTION = 3


class Reading(msgspec.Struct, frozen=True, gc=False):
    """One sample of one point, as a driver or ingest hands it to the store.

    `correction` marks a new version of the reading at the same `ts_ms`: reads
    return the latest version, and the superseded one stays on disk.
    """

    point_id: int
    ts_ms: int
    value: float | None
    quality: Quality = Quality.GOOD
    correction: bool = False


class StoredReading(msgspec.Struct, frozen=True, gc=False):
    """A committed reading with its outbox sequence number."""

    seq: int
    point_id: int
    ts_ms: int
    value: float | None
    quality: Quality
    correction: bool


class Bucket(msgspec.Struct, frozen=True, gc=False):
    """One interval of an aggregate: its start, the function's value and the sample count."""

    start_ms: int
    value: float | None
    count: int


class Page(msgspec.Struct, frozen=True):
    """A page of a keyset-paginated listing; `next_cursor` is None on the last page."""

    items: list[Any]
    next_cursor: str | None


class Organization(msgspec.Struct, frozen=True):
    id: str
    name: str
    created_at: int


class Site(msgspec.Struct, frozen=True):
    id: str
    org_id: str
    name: str
    created_at: int
    updated_at: int
    deleted_at: int | None = None
    customer_id: str | None = None  # the external customer the site serves, if any


class DeviceGroup(msgspec.Struct, frozen=True):
    id: str
    org_id: str
    name: str
    created_at: int
    updated_at: int
    deleted_at: int | None = None


class Device(msgspec.Struct, frozen=True):
    """A device the gateway reaches (or that pushes to it) and its connection settings."""

    id: str
    org_id: str
    name: str
    type: str
    site_id: str | None = None
    group_id: str | None = None
    connection: dict[str, Any] = {}
    profile: str | None = None
    tags: list[str] = []
    enabled: bool = True
    created_at: int = 0
    updated_at: int = 0
    deleted_at: int | None = None
    version: int = 1
    # How movements are derived from one of its points (edge.movements); None: they are not.
    movement: dict[str, Any] | None = None


class Point(msgspec.Struct, frozen=True):
    """A device's measurable point; `config` holds the protocol's addressing (data, not code)."""

    id: int
    uid: str
    org_id: str
    device_id: str
    key: str
    unit: str | None = None
    data_type: str = "float64"
    interval_s: float = 1.0
    config: dict[str, Any] = {}
    created_at: int = 0
    updated_at: int = 0
    deleted_at: int | None = None


class Component(msgspec.Struct, frozen=True):
    """A replaceable part of a device (a CT, a pump motor, an inverter string) and the points
    (sensor uids) that measure it."""

    id: str
    org_id: str
    device_id: str
    name: str
    kind: str | None = None
    serial_number: str | None = None
    sensor_ids: list[str] = []
    created_at: int = 0
    updated_at: int = 0
    deleted_at: int | None = None
    version: int = 1


class AlertRule(msgspec.Struct, frozen=True):
    """A condition the gateway watches as readings arrive; `params` depend on `kind`
    (threshold, rate_of_change, no_data, device_offline)."""

    id: str
    org_id: str
    name: str
    kind: str
    device_id: str | None = None
    metric: str | None = None
    params: dict[str, Any] = {}
    severity: str = "warning"
    enabled: bool = True
    created_at: int = 0
    updated_at: int = 0
    deleted_at: int | None = None
    version: int = 1


class AlarmNote(msgspec.Struct, frozen=True):
    """One entry of an alarm's audit trail: who acknowledged, cleared or commented, when."""

    id: str
    alarm_id: str
    action: str
    actor: str
    text: str | None
    ts_ms: int


class Alarm(msgspec.Struct, frozen=True):
    """An alarm a rule raised: active until its condition clears or someone clears it."""

    id: str
    org_id: str
    rule_id: str
    device_id: str | None
    metric: str | None
    severity: str
    message: str
    value: float | None
    raised_at: int
    acked_at: int | None = None
    acked_by: str | None = None
    cleared_at: int | None = None
    cleared_by: str | None = None
    updated_at: int = 0
    notes: list[AlarmNote] = []

    @property
    def active(self) -> bool:
        return self.cleared_at is None


class Event(msgspec.Struct, frozen=True):
    """Something a technician should see: a device going offline, the disk filling up."""

    id: str
    org_id: str
    type: str
    severity: str
    message: str
    ts_ms: int
    device_id: str | None = None
    data: dict[str, Any] = {}
    # For alarm events: the alarm's state now (None for other events).
    acknowledged: bool | None = None
    cleared: bool | None = None


class ApiKey(msgspec.Struct, frozen=True):
    """An API key's record; the secret itself is never stored, only its hash."""

    id: str
    org_id: str
    name: str
    prefix: str
    scopes: list[str]
    created_at: int
    last_used_at: int | None = None
    revoked_at: int | None = None
    device_id: str | None = None  # set: the key may only send this device's telemetry
    # Non-empty: the key sees only devices in these groups / at sites of these customers.
    allowed_group_ids: list[str] = []
    allowed_customer_ids: list[str] = []

    @property
    def boundary(self) -> Boundary:
        """The part of its organization this key may see."""
        return Boundary(
            self.org_id, tuple(self.allowed_group_ids), tuple(self.allowed_customer_ids)
        )


class Boundary(msgspec.Struct, frozen=True):
    """Which of an organization's devices a caller may see: all, or only those in some
    device groups and/or at sites of some customers (an empty tuple does not narrow)."""

    org_id: str
    group_ids: tuple[str, ...] = ()
    customer_ids: tuple[str, ...] = ()

    @property
    def narrowed(self) -> bool:
        return bool(self.group_ids or self.customer_ids)


# An org id (everything of the org) or a Boundary within it: what a device query may see.
Owner = str | Boundary


def org_of(owner: Owner) -> str:
    """The organization an owner belongs to."""
    return owner.org_id if isinstance(owner, Boundary) else owner


class QuarantinedReading(msgspec.Struct, frozen=True):
    """A reading the upstream refused, with its answer, until retried or discarded."""

    id: str
    seq: int
    org_id: str
    device_id: str
    metric: str
    ts_ms: int
    value: float | None
    quality: Quality
    correction: bool
    status: int | None
    error: Any
    created_at: int
    attempts: int
    retry: bool


class OutboxItem(msgspec.Struct, frozen=True, gc=False):
    """A committed reading as the sync agent pushes it: addressed by device and metric."""

    seq: int
    org_id: str
    device_id: str
    metric: str
    ts_ms: int
    value: float | None
    quality: Quality
    correction: bool


class User(msgspec.Struct, frozen=True):
    """A person who signs in to the LAN UI; `role` is admin, technician or viewer."""

    id: str
    org_id: str
    username: str
    role: str
    created_at: int
    updated_at: int
    disabled_at: int | None = None


class UserSession(msgspec.Struct, frozen=True):
    """A signed-in browser: its user, the CSRF token its forms carry, and when it lapses."""

    user: User
    csrf: str
    created_at: int
    seen_at: int
    expires_at: int
