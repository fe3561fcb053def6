"""Movements: the windows in which a device's chosen point is above a threshold (a motor
drawing current, a pump delivering flow), and whether each is far outside the usual.

A device's `movement` setting names the point (`metric`) and the `threshold`. A
movement starts at the first reading at or above the threshold and ends at the
first reading below `threshold - hysteresis`, or without a value (a failed
poll); one still running at the newest reading is ongoing. The store finds the
windows (`Store.movement_windows`); this module judges them.

Each movement is compared with the completed movements of the same device that
started in the `baseline_days` before it, so its verdict does not depend on
the window a client asks for. The usual range is Tukey's far-out fences over
that history (the quartiles +/- 3 interquartile ranges, the spread at least 5 %
of the median): robust to the outliers it is meant to find, and cheap to keep
while sliding over the history. A movement still running is only judged too
long or too high so far.
"""

from __future__ import annotations

import bisect
from collections import deque
from dataclasses import dataclass
from typing import Annotated, Any, Final

import msgspec

DAY_MS: Final = 86_400_000
# Fewer completed movements than this say nothing about what is usual.
MIN_BASELINE: Final = 5
# Tukey's "far out" fences: a value beyond Q3 + 3 IQR is an outlier in any distribution
# shape a motor's run times plausibly have, not just in a normal one.
FENCE_IQR: Final = 3.0
# The spread is at least this share of the median: over a history of identical runs, a
# second's difference is not an anomaly.
MIN_SPREAD: Final = 0.05


class MovementSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """How a device's movements are derived from one of its points."""

    metric: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    threshold: float
    hysteresis: Annotated[float, msgspec.Meta(ge=0)] = 0.0
    # Shorter runs are noise (a current spike when a contactor closes), not movements.
    min_duration_s: Annotated[float, msgspec.Meta(ge=0)] = 0.0
    baseline_days: Annotated[int, msgspec.Meta(ge=0, le=90)] = 30


def parse_settings(raw: Any) -> MovementSettings:
    """Settings from a device's `movement` object; ValueError names what is wrong."""
    try:
        return msgspec.convert(raw, MovementSettings)
    except msgspec.ValidationError as error:
        raise ValueError(f"movement: {str(error).replace('`', '')}") from None


@dataclass(frozen=True, slots=True)
class Window:
    """A run of readings at or above the threshold, as the store finds it."""

    start_ms: int
    end_ms: int | None  # the first reading below the off level; None while still running
    last_ms: int  # the last reading of the run
    samples: int
    min: float
    max: float
    avg: float

    @property
    def duration_s(self) -> float:
        return ((self.end_ms if self.end_ms is not None else self.last_ms) - self.start_ms) / 1000


@dataclass(frozen=True, slots=True)
class Usual:
    """The quartiles of a measure over a movement's history."""

    q1: float
    median: float
    q3: float

    def verdict(self, value: float) -> str | None:
        """ "above" or "below" when outside the far-out fences, else None."""
        spread = max(self.q3 - self.q1, MIN_SPREAD * abs(self.median))
        if value > self.q3 + FENCE_IQR * spread:
            return "above"
        if value < self.q1 - FENCE_IQR * spread:
            return "below"
        return None


@dataclass(frozen=True, slots=True)
class Anomaly:
    """How a movement compares with the device's usual movements."""

    baseline_movements: int
    baseline_days: int
    duration: Usual | None
    peak: Usual | None
    reasons: tuple[str, ...]

    @property
    def is_anomaly(self) -> bool:
        return bool(self.reasons)


@dataclass(frozen=True, slots=True)
class Movement:
    """A judged movement window."""

    window: Window
    anomaly: Anomaly


class _Sorted:
    """A multiset of floats kept sorted, for quartiles of a sliding history."""

    def __init__(self) -> None:
        self.values: list[float] = []

    def add(self, value: float) -> None:
        bisect.insort(self.values, value)

    def remove(self, value: float) -> None:
        del self.values[bisect.bisect_left(self.values, value)]

    def usual(self) -> Usual:
        v = self.values
        return Usual(_quantile(v, 0.25), _quantile(v, 0.5), _quantile(v, 0.75))


def _quantile(ordered: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default), over a sorted list."""
    pos = (len(ordered) - 1) * q
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def judge(
    windows: list[Window], settings: MovementSettings, start_ms: int, end_ms: int
) -> list[Movement]:
    """The movements starting in [start, end), at least `min_duration_s` long, each judged
    against the completed movements of the `baseline_days` before it.

    `windows` must hold every window from `start - baseline_days` on, oldest first.
    """
    kept = [w for w in windows if w.duration_s >= settings.min_duration_s or w.end_ms is None]
    history: deque[Window] = deque()
    durations, peaks = _Sorted(), _Sorted()
    horizon = settings.baseline_days * DAY_MS
    out: list[Movement] = []
    pending = iter(kept)
    upcoming = next(pending, None)
    for w in kept:
        # History: completed windows that started before this one, within the horizon.
        while upcoming is not None and upcoming.start_ms < w.start_ms:
            if upcoming.end_ms is not None:
                history.append(upcoming)
                durations.add(upcoming.duration_s)
                peaks.add(upcoming.max)
            upcoming = next(pending, None)
        while history and history[0].start_ms < w.start_ms - horizon:
            old = history.popleft()
            durations.remove(old.duration_s)
            peaks.remove(old.max)
        if start_ms <= w.start_ms < end_ms:
            out.append(Movement(w, _anomaly(w, len(history), durations, peaks, settings)))
    return out


def _anomaly(
    w: Window, count: int, durations: _Sorted, peaks: _Sorted, settings: MovementSettings
) -> Anomaly:
    if count < MIN_BASELINE:
        return Anomaly(count, settings.baseline_days, None, None, ())
    duration, peak = durations.usual(), peaks.usual()
    reasons = []
    for measure, usual, value in (("duration", duration, w.duration_s), ("peak", peak, w.max)):
        verdict = usual.verdict(value)
        # A movement still running can be too long or too high so far, not too short or low.
        if verdict == "above" or (verdict == "below" and w.end_ms is not None):
            reasons.append(f"{measure}_{verdict}_usual")
    return Anomaly(count, settings.baseline_days, duration, peak, tuple(reasons))
