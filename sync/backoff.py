"""Backoff: exponential delays with full jitter, so gateways never retry in step."""

from __future__ import annotations

import random
from typing import Final

FIRST_S: Final = 1.0


class Backoff:
    """The pause before the next retry: uniform in [0, min(cap, first * 2**failures)]."""

    def __init__(self, cap_s: float, first_s: float = FIRST_S, rng: random.Random | None = None):
        self.cap_s = cap_s
        self.first_s = first_s
        self.failures = 0
        self._rng = rng or random.Random()

    def next_delay(self) -> float:
        """Count a failure and return how long to wait before trying again."""
        ceiling = min(self.cap_s, self.first_s * 2 ** min(self.failures, 32))
        self.failures += 1
        return self._rng.uniform(0, ceiling)

    def reset(self) -> None:
        """A success: the next failure starts from the first delay again."""
        self.failures = 0
