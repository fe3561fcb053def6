"""What a running gateway hands its web app and agents: settings, store, supervisor."""

from __future__ import annotations

from dataclasses import dataclass, field

from edge.models import now_ms
from edge.settings import Settings
from edge.stats import StatsSource
from edge.store import Store
from edge.supervisor import Supervisor


@dataclass(frozen=True, slots=True)
class Runtime:
    """The running gateway's parts, passed down explicitly."""

    settings: Settings
    store: Store
    supervisor: Supervisor
    started_at_ms: int = field(default_factory=now_ms)
    stats_sources: list[StatsSource] = field(default_factory=list)
