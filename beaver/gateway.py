"""A gateway of the monolithic gateway overlay (a software load balancer).

Every packet from the out-group into the in-group crosses one gateway, which
stamps it with the gateway's current snapshot id. The coordinator raises a
gateway's id to start a snapshot; optimistic marking lets in-group traffic
that crosses the gateway with a newer id raise it earlier (it only narrows
the window in which a gateway still stamps an old id). Ids only grow.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from beaver.ids import IdSpace, OutOfWindow, require_id


@dataclass
class Gateway:
    """The snapshot-id state of one gateway; the data plane asks it what to stamp."""

    name: str
    space: IdSpace = field(default_factory=IdSpace)
    optimistic: bool = True
    current: int = 0
    rejected: int = 0
    """In-group wire ids seen out of window (counted, never adopted)."""

    def stamp(self) -> int:
        """The wire id to write on a packet forwarded into the in-group."""
        return self.space.to_wire(self.current)

    def set_id(self, snapshot_id: int) -> bool:
        """The coordinator's update; returns whether the id changed (ids never go back)."""
        if require_id(snapshot_id) <= self.current:
            return False
        self.current = snapshot_id
        return True

    def observe_ingroup(self, wire: int) -> bool:
        """In-group traffic crossing the gateway carries ``wire``; returns whether it adopted it."""
        if not self.optimistic:
            return False
        try:
            seen = self.space.from_wire(wire, self.current)
        except OutOfWindow:
            self.rejected += 1
            return False
        return seen is not None and self.set_id(seen)
