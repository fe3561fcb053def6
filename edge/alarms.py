"""Alert rules: what a rule may say, and the engine that evaluates rules on the gateway
as readings commit, so alarms work with no uplink.

Kinds of rule (`params` by kind):
- `threshold` (`op` one of > >= < <=, `value`, `hysteresis` >= 0): raised when a good
  reading crosses the value, cleared only once it is back past value -/+ hysteresis.
- `rate_of_change` (`op`, `rate_per_s`): the change per second between consecutive
  readings of the point crosses the rate; cleared when it no longer does.
- `no_data` (`silence_s`): the point (or, with no metric, every point of the device) has
  had no reading for that long; cleared by the next reading.
- `device_offline` (`for_s`, default 0): the device's driver has reported it offline for
  that long; cleared when it is online again.

The alarms table is the state: a rule has at most one active alarm, so a restart or a
reading evaluated twice never raises a second one.
"""

from __future__ import annotations

import asyncio
import logging
import operator
import time
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Final, Literal

import msgspec

from edge.models import AlertRule, Quality, Reading, now_ms
from edge.runtime import Runtime
from edge.store import NotFound, Refused

log = logging.getLogger(__name__)

SEVERITIES: Final = ("info", "warning", "critical")
# Rules are re-read this often, so rules changed through the API apply within it.
RELOAD_S: Final = 2.0
# Silence and offline conditions are checked this often.
TICK_S: Final = 1.0
OPS: Final[dict[str, Callable[[float, float], bool]]] = {
    ">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le,
}  # fmt: skip
Op = Literal[">", ">=", "<", "<="]


class _Threshold(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    op: Op
    value: float
    hysteresis: Annotated[float, msgspec.Meta(ge=0)] = 0.0


class _Rate(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    op: Op
    rate_per_s: float


class _NoData(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    silence_s: Annotated[float, msgspec.Meta(gt=0)]


class _Offline(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    for_s: Annotated[float, msgspec.Meta(ge=0)] = 0.0


KINDS: Final[dict[str, type[msgspec.Struct]]] = {
    "threshold": _Threshold,
    "rate_of_change": _Rate,
    "no_data": _NoData,
    "device_offline": _Offline,
}


def check(rule: AlertRule) -> None:
    """Refused (naming the field) unless the rule is one the engine can evaluate."""
    if not rule.name.strip():
        raise Refused("name must not be empty")
    if rule.kind not in KINDS:
        raise Refused(f"kind must be one of {', '.join(KINDS)}")
    if rule.severity not in SEVERITIES:
        raise Refused(f"severity must be one of {', '.join(SEVERITIES)}")
    try:
        msgspec.convert(rule.params, KINDS[rule.kind])
    except msgspec.ValidationError as error:
        raise Refused(f"params: {str(error).replace('`', '')}") from None
    if rule.device_id is None:
        raise Refused("device_id is required")
    if rule.kind in ("threshold", "rate_of_change") and not rule.metric:
        raise Refused(f"a {rule.kind} rule needs a metric")


def _crossed(params: _Threshold, value: float) -> bool:
    return OPS[params.op](value, params.value)


def _back(params: _Threshold, value: float) -> bool:
    """Past the threshold by the hysteresis, the other way."""
    if params.op in (">", ">="):
        return value < params.value - params.hysteresis
    return value > params.value + params.hysteresis


class AlarmEngine:
    """Evaluates every enabled rule: readings as they commit, silence and offline by time."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self._store = runtime.store
        self._queue: asyncio.Queue[Sequence[Reading]] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._rules: list[AlertRule] = []
        self._by_point: dict[int, list[AlertRule]] = {}
        self._points_of: dict[str, list[int]] = {}  # rule id -> the points it watches
        self._active: set[str] = set()
        self._previous: dict[int, tuple[int, float]] = {}  # point -> last good (ts, value)
        self._heard: dict[int, int] = {}  # point -> newest reading's arrival (epoch ms)
        self._offline_since: dict[str, float] = {}
        self._version = -1
        self.evaluated = 0
        self._store.on_commit(self._committed)

    def _committed(self, readings: Sequence[Reading]) -> None:
        """From the writer thread: hand the readings to the engine's loop, nothing more."""
        loop, queue = self._loop, self._queue
        if loop is not None and queue is not None and not loop.is_closed():
            loop.call_soon_threadsafe(queue.put_nowait, readings)

    async def run(self) -> None:
        """Evaluate until cancelled."""
        self._loop, self._queue = asyncio.get_running_loop(), asyncio.Queue()
        try:
            await self._reload()
            next_reload = next_tick = time.monotonic()
            while True:
                now = time.monotonic()
                if now >= next_reload:
                    await self._reload()
                    next_reload = now + RELOAD_S
                if now >= next_tick:
                    await self._tick()
                    next_tick = now + TICK_S
                timeout = max(0.0, min(next_reload, next_tick) - time.monotonic())
                try:
                    readings = await asyncio.wait_for(self._queue.get(), timeout)
                except TimeoutError:
                    continue
                if self._store.rules_version != self._version:
                    await self._reload()
                await self._evaluate(readings)
        finally:
            self._loop = self._queue = None

    async def _reload(self) -> None:
        self._version = self._store.rules_version
        rules = await asyncio.to_thread(self._store.live_rules)
        self._active = await asyncio.to_thread(self._store.active_rule_ids)
        by_point: dict[int, list[AlertRule]] = {}
        points_of: dict[str, list[int]] = {}
        for rule in rules:
            points = await asyncio.to_thread(self._watched, rule)
            points_of[rule.id] = points
            for point in points:
                by_point.setdefault(point, []).append(rule)
                self._heard.setdefault(point, now_ms())  # silence counts from now, at most
        self._rules, self._by_point, self._points_of = rules, by_point, points_of

    def _watched(self, rule: AlertRule) -> list[int]:
        if rule.device_id is None or rule.kind == "device_offline":
            return []
        try:
            points = self._store.points(rule.org_id, rule.device_id)
        except NotFound:
            return []
        return [p.id for p in points if rule.metric is None or p.key == rule.metric]

    async def _evaluate(self, readings: Sequence[Reading]) -> None:
        for reading in readings:
            self._heard[reading.point_id] = now_ms()
            rules = self._by_point.get(reading.point_id)
            if not rules:
                continue
            for rule in rules:
                await self._apply(rule, reading)
            if reading.quality is Quality.GOOD and reading.value is not None:
                self._previous[reading.point_id] = (reading.ts_ms, reading.value)
        self.evaluated += len(readings)

    async def _apply(self, rule: AlertRule, reading: Reading) -> None:
        if rule.kind == "no_data":
            if rule.id in self._active:
                await self._clear(rule, f"{rule.name}: data again")
            return
        if reading.quality is not Quality.GOOD or reading.value is None:
            return  # a failed read says nothing about the process
        value = reading.value
        if rule.kind == "threshold":
            params = msgspec.convert(rule.params, _Threshold)
            if rule.id not in self._active and _crossed(params, value):
                message = f"{rule.name}: {rule.metric} is {value:g} ({params.op} {params.value:g})"
                await self._raise(rule, message, value, reading.ts_ms)
            elif rule.id in self._active and _back(params, value):
                await self._clear(rule, f"{rule.name}: {rule.metric} back to {value:g}")
        elif rule.kind == "rate_of_change":
            previous = self._previous.get(reading.point_id)
            if previous is None or reading.ts_ms <= previous[0]:
                return
            rate_params = msgspec.convert(rule.params, _Rate)
            rate = (value - previous[1]) * 1000 / (reading.ts_ms - previous[0])
            crossing = OPS[rate_params.op](rate, rate_params.rate_per_s)
            if crossing and rule.id not in self._active:
                await self._raise(rule, f"{rule.name}: {rule.metric} changes {rate:g}/s",
                                  value, reading.ts_ms)  # fmt: skip
            elif not crossing and rule.id in self._active:
                await self._clear(rule, f"{rule.name}: {rule.metric} steady again")

    async def _tick(self) -> None:
        now = now_ms()
        for rule in self._rules:
            if rule.kind == "no_data":
                points = self._points_of.get(rule.id, [])
                if not points or rule.id in self._active:
                    continue
                silence_s = msgspec.convert(rule.params, _NoData).silence_s
                newest = max(self._heard.get(p, now) for p in points)
                if now - newest >= silence_s * 1000:
                    await self._raise(rule, f"{rule.name}: no data for {silence_s:g} s", None, now)
            elif rule.kind == "device_offline":
                await self._check_offline(rule, now)

    async def _check_offline(self, rule: AlertRule, now: int) -> None:
        assert rule.device_id is not None
        try:
            device = await asyncio.to_thread(self._store.device, rule.org_id, rule.device_id)
        except NotFound:
            return
        offline = self._runtime.device_status(device) == "offline"
        if not offline:
            self._offline_since.pop(rule.id, None)
            if rule.id in self._active:
                await self._clear(rule, f"{rule.name}: {device.name} is online again")
            return
        since = self._offline_since.setdefault(rule.id, time.monotonic())
        for_s = msgspec.convert(rule.params, _Offline).for_s
        if rule.id not in self._active and time.monotonic() - since >= for_s:
            await self._raise(rule, f"{rule.name}: {device.name} is offline", None, now)

    async def _raise(self, rule: AlertRule, message: str, value: float | None, ts: int) -> None:
        self._active.add(rule.id)
        raised = await asyncio.to_thread(self._store.raise_alarm, rule, message, value, ts)
        if raised is not None:
            log.warning("alarm %s raised: %s", raised.id, message)

    async def _clear(self, rule: AlertRule, message: str) -> None:
        self._active.discard(rule.id)
        cleared = await asyncio.to_thread(self._store.clear_rule_alarm, rule, message, now_ms())
        if cleared is not None:
            log.info("alarm %s cleared: %s", cleared.id, message)


def rule_from_body(org_id: str, body: dict[str, Any]) -> AlertRule:
    """A new rule from an API body (snake_case), checked; Refused names what is wrong."""
    name, kind = body.get("name"), body.get("kind")
    if not isinstance(name, str) or not isinstance(kind, str):
        raise Refused("name and kind are required")
    params = body.get("params") or {}
    if not isinstance(params, dict):
        raise Refused("params must be an object")
    rule = AlertRule("", org_id, name.strip(), kind, body.get("device_id"), body.get("metric"),
                     params, body.get("severity", "warning"),
                     bool(body.get("enabled", True)))  # fmt: skip
    check(rule)
    return rule
