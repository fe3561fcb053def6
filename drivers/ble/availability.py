"""Availability of advertising sensors: each one's advert interval learned, stale after a multiple.

A sensor is never asked whether it is there; it is only heard or not. The
interval is the median of the recent gaps between its adverts, so one missed
advert or one burst does not move it. Until an interval is learned, a sensor
is stale after the default (15 min: the slowest common sensors advertise every
few minutes).
"""

from __future__ import annotations

import statistics
from collections import deque
from dataclasses import dataclass, field
from typing import Final

# Gaps kept for the median: enough to ride out a burst, few enough to follow a change.
GAPS_KEPT: Final = 16
# Gaps learned before the interval is trusted.
GAPS_NEEDED: Final = 3
# Reports closer than this are one advertising event heard twice (on two channels, or an
# advert and its scan response), not the sensor's interval: BLE's shortest interval is 20 ms.
SAME_EVENT_S: Final = 0.1


@dataclass
class Availability:
    """What is known of one sensor's adverts: when it was last heard, its interval, its state."""

    stale_multiple: float
    default_stale_s: float
    # When listening began: a sensor never heard is stale counting from here.
    since: float = 0.0
    last_heard: float | None = None
    online: bool | None = None
    _gaps: deque[float] = field(default_factory=lambda: deque(maxlen=GAPS_KEPT))

    @property
    def interval_s(self) -> float | None:
        """The learned advert interval, once enough gaps were seen."""
        if len(self._gaps) < GAPS_NEEDED:
            return None
        return statistics.median(self._gaps)

    @property
    def stale_after_s(self) -> float:
        """Silence longer than this makes the sensor stale."""
        interval = self.interval_s
        if interval is None:
            return self.default_stale_s
        return interval * self.stale_multiple

    def heard(self, at: float) -> bool:
        """Record an advert heard at `at` (monotonic); True if the sensor just came online."""
        if self.last_heard is not None:
            gap = at - self.last_heard
            # A gap that made the sensor stale is an outage, not its interval.
            if gap < SAME_EVENT_S:
                return False
            if gap <= self.stale_after_s:
                self._gaps.append(gap)
        self.last_heard = at
        came_online = self.online is not True
        self.online = True
        return came_online

    def check(self, now: float) -> bool:
        """True if the sensor just went stale: silent (or never heard since `since`) for longer
        than `stale_after_s`."""
        if self.online is False:
            return False
        if now - (self.last_heard or self.since) > self.stale_after_s:
            self.online = False
            return True
        return False
