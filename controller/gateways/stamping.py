"""One gateway's id updates in order: a few stamp flow-mods in flight, the rest merged.

The controller raises a gateway's id with one stamp flow-mod (its ``current``
rule, which the stamp and observe rules read) and a barrier behind it; the
barrier reply says the rule is in place. Updates to one
gateway are pipelined: up to ``depth`` such flow-mods may await their
barriers at once, so the update of snapshot k+1 leaves before k's barrier
returned. Updates asked for while ``depth`` are in flight wait; when the
oldest barrier returns, one flow-mod for the gateway's newest id goes out
and its barrier acknowledges every waiting update at once. That is sound
because ids only grow: a gateway stamping k+2 no longer stamps anything
older than k, which is all an update to k must guarantee. Every flow-mod
travels on the switch's one OpenFlow connection, so the gateway applies
them in the order sent and never goes back to an older id. The merged
updates are counted (:attr:`StampLane.coalesced`): each saved a flow-mod,
a barrier and a datapath sync.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from beaver.ids import IdSpace

Part = TypeVar("Part")


@dataclass
class StampLane(Generic[Part]):
    """The updates of one gateway: each a ``Part`` the caller fills in with times."""

    depth: int = 2
    in_flight: deque[list[Part]] = field(default_factory=deque)
    """Per stamp flow-mod sent and not yet acknowledged, the updates it carries."""
    waiting: list[Part] = field(default_factory=list)
    coalesced: int = 0
    """Updates so far that got no flow-mod of their own: a newer one's carried them."""

    def __post_init__(self) -> None:
        if self.depth < 1:
            raise ValueError(f"a stamp lane needs a depth of at least 1, got {self.depth}")

    def ask(self, part: Part) -> bool:
        """A new update: True if a stamp flow-mod for it should be sent now."""
        if len(self.in_flight) < self.depth:
            self.in_flight.append([part])
            return True
        self.waiting.append(part)
        return False

    def sending(self) -> list[Part]:
        """The updates the flow-mod being sent now carries (the newest in flight)."""
        return self.in_flight[-1] if self.in_flight else []

    def acked(self) -> tuple[list[Part], bool]:
        """The oldest flow-mod's barrier returned: the updates it carried, and whether a
        flow-mod for the waiting ones should be sent now."""
        done = self.in_flight.popleft() if self.in_flight else []
        if self.waiting and len(self.in_flight) < self.depth:
            self.in_flight.append(self.waiting)
            self.coalesced += len(self.waiting) - 1
            self.waiting = []
            return done, True
        return done, False

    def clear(self) -> list[Part]:
        """The connection is gone: every update in flight or waiting, now without a reply."""
        parts = [part for carried in self.in_flight for part in carried] + self.waiting
        self.in_flight.clear()
        self.waiting = []
        return parts


MARK_SPACE = IdSpace(bits=31, window=(1 << 30) - 1)
"""The ``pkt_mark`` values the stamp rule uses: snapshot ids as wire codes of 31 bits (the
core's :class:`~beaver.ids.IdSpace`: 1..2**31-1, never 0, every packet's own mark), with
the widest window they decode unambiguously in."""


def stamp_mark(snapshot_id: int) -> int:
    """The ``pkt_mark`` the stamp rule for ``snapshot_id`` gives every packet it stamps.

    The mark never leaves the gateway's switch daemon (no port sends it out); it is there
    so that each cached datapath flow of the stamp path shows which id it stamps
    (:mod:`controller.gateways.datapath` reads them, ``MARK_SPACE.from_wire``, to know
    when an update holds). It is never 0, the mark packets arrive with, so the flow's
    actions always set it.
    """
    return MARK_SPACE.to_wire(snapshot_id)
