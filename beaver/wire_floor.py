"""The coordinator's wire-id bookkeeping: which ids may still be on the wire.

Every id alive in the system stays within the wire id window
(:mod:`beaver.ids`), so that wire codes decode to the ids they were stamped
with. An id is alive while a process may still stamp it, and for a
*maximum packet lifetime* (``packet_lifetime``) after that, while a packet
stamped with it may still be in flight. The coordinator knows when a
process stopped stamping an id only from what it hears: every node has
reported a snapshot above it once every snapshot up to it is finished (a
snapshot is finished when it is complete and its gateway phase is over:
acknowledged, failed or timed out), and a gateway stopped stamping older
ids when it acknowledged a newer one. A gateway whose updates fail may
still forward traffic stamped with the last id it acknowledged, so that id
counts as alive too. The *live floor* is the oldest id a process may still
stamp; the coordinator remembers when the floor rose, and an id below it
stays alive for ``packet_lifetime`` after that. Snapshot k starts only when
k is at most ``window`` ahead of every alive id, and at most the space's
``lead`` ahead of every gateway's acknowledged id (a gateway recognises
in-group ids only that far ahead of its own: :class:`beaver.ids.IdSpace`). This is the assumption
that makes wire ids unambiguous, as TCP's maximum segment lifetime makes
sequence numbers reusable: a packet stamped with an id is delivered (or
lost) within ``packet_lifetime`` of being stamped. A runtime that breaks
it can alias old stamps to newer ids: the simulator checks every stamped
packet against it and says which broke it.

Times passed in are the coordinator's clock; it keeps the latest one it
was told (time never goes back for it), so a late event stays on the
safe side.
"""

from __future__ import annotations

import math
from collections import deque

from beaver.ids import IdSpace
from beaver.refusals import require_time

DEFAULT_PACKET_LIFETIME = 1e-3
"""Seconds a stamped packet may stay in a data center network (delivered or lost by then)."""


class WireFloor:
    """The live floor, when it rose, and the coordinator's clock.

    Mixed into :class:`~beaver.coordinator.Coordinator`, which sets up the
    state with :meth:`_init_floor` and reads ``newest``, ``_gateway_ids`` and
    ``oldest_unfinished`` from it.
    """

    newest: int
    oldest_unfinished: int
    space: IdSpace
    _gateway_ids: dict[str, int]

    def _init_floor(self, packet_lifetime: float) -> None:
        self.packet_lifetime = packet_lifetime
        """The assumed maximum time a stamped packet stays in flight (see the module doc)."""
        self._clock = -math.inf
        """The latest time the coordinator was told."""
        self._live_floor = 0
        """The oldest id a node or gateway may still stamp."""
        self._floors: deque[tuple[float, int]] = deque([(-math.inf, 0)])
        """When the live floor rose, and to what: ids below a floor that rose at t may be
        on the wire until t + packet_lifetime (older entries are dropped once unneeded)."""
        self._drop_at = math.inf
        """When the oldest floor is no longer needed (the second one's rise plus the packet
        lifetime; inf while there is one floor)."""

    @property
    def window(self) -> int:
        return self.space.window

    def oldest_on_wire(self, now: float) -> int:
        """The oldest id a packet in flight at ``now`` may carry (see the module docstring)."""
        now = max(require_time(now), self._clock)
        oldest = self._floors[0][1]
        for rose_at, floor in self._floors:
            if rose_at + self.packet_lifetime > now:
                break
            oldest = floor
        return oldest

    def can_start(self, now: float) -> bool:
        """Whether one more snapshot at ``now`` keeps every alive id within the wire window
        and every gateway's acknowledged id within the lead of it."""
        return (self.newest + 1 - self.oldest_on_wire(now) <= self.window
                and not self._lagging_gateways())

    def _lagging_gateways(self) -> list[str]:
        """The gateways whose acknowledged id the next snapshot would lead by more than the
        space's ``lead``."""
        lead = self.space.lead
        return [g for g, k in self._gateway_ids.items() if self.newest + 1 - k > lead]

    def next_start_at(self) -> float | None:
        """When the packet lifetime alone next lets a snapshot start (maybe already past);
        None while a snapshot must finish or a gateway acknowledge first."""
        if self.newest + 1 - self._live_floor > self.window or self._lagging_gateways():
            return None
        for rose_at, floor in self._floors:
            if self.newest + 1 - floor <= self.window:
                return rose_at + self.packet_lifetime
        return None  # not reached: the live floor is the last entry

    def start_holdup(self, now: float) -> str:
        """What a start at ``now`` waits for (when :meth:`can_start` says no)."""
        lagging = self._lagging_gateways()
        if lagging:
            return f"gateway {', '.join(lagging)} to acknowledge a newer id"
        if self.newest + 1 - self._live_floor > self.window:
            return f"snapshot {self.oldest_unfinished} to finish"
        return (f"packets stamped {self.oldest_on_wire(now)} to leave the network "
                f"(packet lifetime {self.packet_lifetime:g} s)")

    def _tick(self, now: float) -> float:
        """Advance the coordinator's clock to ``now`` (never back) and drop the floors no
        packet can carry any more; returns the clock."""
        if now > self._clock:
            self._clock = now
            if now >= self._drop_at:
                floors, lifetime = self._floors, self.packet_lifetime
                while len(floors) > 1 and floors[1][0] + lifetime <= now:
                    floors.popleft()
                self._drop_at = floors[1][0] + lifetime if len(floors) > 1 else math.inf
        return self._clock

    def _raise_floor(self) -> None:
        """Note when the oldest id a process may still stamp rose (after a finish or an ack)."""
        stamped = min(self._gateway_ids.values(), default=self.newest)
        floor = min(self.oldest_unfinished - 1, stamped)
        if floor > self._live_floor:
            self._live_floor = floor
            self._floors.append((self._clock, floor))
            if len(self._floors) == 2:
                self._drop_at = self._clock + self.packet_lifetime

    def _lower_floor(self, stamping: int) -> None:
        """A process stamps ``stamping`` again (a restart with an older id): alive again."""
        if stamping < self._live_floor:
            self._live_floor = stamping
            self._floors = deque([(-math.inf, stamping)])
            self._drop_at = math.inf
