"""Faults a simulated bus shows: units that never answer or answer late, and refused requests.

The servers read the one `Faults` afresh for every request, so a test can change it
while clients poll and see the effect on the next request.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Faults:
    """What goes wrong on the bus, per unit; mutable while the servers run."""

    # Units that send no reply at all, so the client times out.
    dead_units: set[int] = field(default_factory=set)
    # Unit -> extra seconds before the reply.
    slow_units: dict[int, float] = field(default_factory=dict)
    # Unit -> {(table, address)}: any request touching one draws Illegal Data Address.
    illegal_addresses: dict[int, set[tuple[str, int]]] = field(default_factory=dict)
    # Reads of more registers (or bits) than this draw Illegal Data Address, as real meters do.
    max_block: int | None = None
    # Every request the servers receive, answered or not.
    request_count: int = 0

    def refuses(self, unit_id: int, table: str, address: int, count: int) -> bool:
        """Whether a request over these addresses touches one marked illegal."""
        marked = self.illegal_addresses.get(unit_id, ())
        return any(t == table and address <= a < address + count for t, a in marked)

    def too_long(self, count: int) -> bool:
        """Whether a read of `count` registers or bits exceeds the block limit."""
        return self.max_block is not None and count > self.max_block
