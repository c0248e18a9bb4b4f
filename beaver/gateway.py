"""A gateway of the monolithic gateway overlay (a software load balancer).

Every packet from the out-group into the in-group crosses one gateway, which
stamps it with the gateway's current snapshot id. The coordinator raises a
gateway's id to start a snapshot; optimistic marking lets in-group traffic
that crosses the gateway with a newer id raise it earlier (it only narrows
the window in which a gateway still stamps an old id). Ids only grow, except
across a crash: a restarted gateway has the id it recovered, or none, and
one with none forwards no out-group traffic until the coordinator sets one.
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
    ready: bool = True
    """Whether the gateway has an id to stamp (not after a restart without one)."""

    def stamp(self) -> int:
        """The wire id to write on a packet forwarded into the in-group."""
        if not self.ready:
            raise RuntimeError(f"gateway {self.name} has no snapshot id yet and must not forward "
                               f"out-group traffic")
        return self.space.to_wire(self.current)

    def set_id(self, snapshot_id: int) -> bool:
        """The coordinator's update; returns whether the id changed (ids never go back)."""
        if not self.ready:
            self.ready, self.current = True, max(self.current, require_id(snapshot_id))
            return True
        if require_id(snapshot_id) <= self.current:
            return False
        self.current = snapshot_id
        return True

    def restart(self, recovered: int | None) -> None:
        """The gateway comes back after a crash with the id it recovered (None: no id)."""
        self.current = 0 if recovered is None else require_id(recovered)
        self.ready = recovered is not None

    def observe_ingroup(self, wire: int) -> bool:
        """In-group traffic crossing the gateway carries ``wire``; returns whether it adopted it."""
        if not self.optimistic or not self.ready:
            return False
        try:
            seen = self.space.from_wire(wire, self.current)
        except OutOfWindow:
            self.rejected += 1
            return False
        return seen is not None and self.set_id(seen)
