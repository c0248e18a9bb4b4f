"""In-group node rules for id-piggybacking protocols (Beaver and Lai-Yang).

Every message an in-group node sends carries the node's current snapshot id.
On receiving a message with a newer id, the node first records its local
state (the application's ``capture`` callback), adopts the id, and only then
lets the message be delivered. A message from another in-group node with an
older id that arrives after the snapshot was in flight: it belongs to the
channel state of every snapshot between its id and the receiver's id.

Counting makes channel state decidable: each local snapshot carries, per
peer, how many in-group messages the node sent and received since its
previous local snapshot. The coordinator adds these up (see
:mod:`beaver.coordinator`).

Beaver and Lai-Yang differ only outside the node: under Beaver, out-group
traffic enters through gateways that stamp it; under Lai-Yang without
gateways it arrives unmarked and cannot trigger a snapshot.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from beaver.ids import IdSpace, OutOfWindow, require_id
from beaver.records import NOTHING, InFlight, LocalSnapshot, Receipt

REJECTED = Receipt(deliver=False, rejected=True)
_record = tuple.__new__
"""Makes a record (a named tuple) from all its fields at once: the hot paths below call it
rather than the records' constructors, which check nothing more and cost a Python call."""


class PiggybackNode:
    """The snapshot state machine of one in-group node; the runtime passes time in."""

    def __init__(self, name: str, capture: Callable[[], Any], space: IdSpace | None = None):
        self.name = name
        self.space = space or IdSpace()
        self.current = 0
        self.rejected = 0
        """Messages refused: out-of-window ids, or unmarked messages from in-group peers."""
        self._capture = capture
        self._sent: dict[str, int] = {}
        self._received: dict[str, int] = {}

    def send(self, peer: str | None, now: float) -> int:
        """Account for a message to ``peer`` (None: out-group) and return its wire stamp."""
        if peer is not None:
            self._sent[peer] = self._sent.get(peer, 0) + 1
        return self.space.to_wire(self.current)

    def receive(self, wire: int, sender: str | None, now: float, message: Any = None) -> Receipt:
        """Decide about a message from ``sender`` (None: out-group, via a gateway)."""
        try:
            seen = self.space.from_wire(wire, self.current)
        except OutOfWindow:
            self.rejected += 1
            return REJECTED
        if seen is None:
            if sender is not None:
                self.rejected += 1
                return REJECTED
            return NOTHING
        snapshots = (self._take(seen, now),) if seen > self.current else ()
        in_flight: tuple[InFlight, ...] = ()
        if sender is not None:
            self._received[sender] = self._received.get(sender, 0) + 1
            if seen < self.current:
                in_flight = (InFlight(self.name, sender, seen + 1, self.current, message, now),)
        if not snapshots and not in_flight:
            return NOTHING
        return Receipt(snapshots=snapshots, in_flight=in_flight)

    def notify(self, snapshot_id: int, now: float) -> Receipt:
        """The coordinator says snapshot ``snapshot_id`` exists (so idle nodes snapshot too)."""
        if type(snapshot_id) is not int or snapshot_id < 0:
            require_id(snapshot_id)
        if snapshot_id <= self.current:
            return NOTHING
        return _record(Receipt, (True, False, (self._take(snapshot_id, now),), (), ()))

    def _take(self, snapshot_id: int, now: float) -> LocalSnapshot:
        # node, first_id, last_id, taken_at, state, sent, received (a hot path)
        local = _record(LocalSnapshot, (self.name, self.current + 1, snapshot_id, now,
                                        self._capture(), self._sent, self._received))
        self._sent = {}
        self._received = {}
        self.current = snapshot_id
        return local

