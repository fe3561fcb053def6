"""Samples that parts of the gateway offer for /metrics and status pages.

Drivers and agents implement `StatsSource`; the web layer renders the samples
as Prometheus metric families without knowing who produced them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal, Protocol


@dataclass(frozen=True, slots=True)
class Sample:
    """One value of one metric, with its labels."""

    name: str
    help: str
    kind: Literal["counter", "gauge"]
    value: float
    labels: dict[str, str] = field(default_factory=dict)


class StatsSource(Protocol):
    """Anything that reports samples at scrape time."""

    def samples(self) -> Iterable[Sample]:
        """The current samples."""
        ...
