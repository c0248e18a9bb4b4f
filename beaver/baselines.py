"""In-group node rules of the baseline protocols Beaver is compared with.

- Chandy-Lamport: the initiator records its state and sends a marker on
  every outgoing in-group channel; a node records its state on the first
  marker of a snapshot and forwards markers; it records each incoming
  channel until that channel's marker arrives. Needs FIFO channels and adds
  N(N-1) markers per snapshot. It reports its local snapshot once every
  incoming channel is closed.
- Polling: every node records its state when the coordinator's request
  reaches it. No coordination, no channel state.

Both leave data messages unmarked (wire id 0). Lai-Yang without gateways
is :class:`beaver.node.PiggybackNode` with no gateway stamping.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from beaver.ids import UNMARKED, require_id
from beaver.records import NOTHING, InFlight, LocalSnapshot, Marker, Receipt


class MarkerNode:
    """A Chandy-Lamport process over the complete graph of in-group channels."""

    def __init__(self, name: str, peers: Iterable[str], capture: Callable[[], Any]):
        self.name = name
        self.peers = tuple(sorted(set(peers) - {name}))
        self.current = 0
        self._capture = capture
        self._open: dict[int, set[str]] = {}
        """Per snapshot taken here, the peers whose marker has not arrived yet."""
        self._unreported: dict[int, LocalSnapshot] = {}

    def send(self, peer: str | None, now: float) -> int:
        return UNMARKED

    def receive(self, wire: int, sender: str | None, now: float, message: Any = None) -> Receipt:
        """A data message: record it for every snapshot whose channel from ``sender`` is open."""
        if sender is None:
            return NOTHING
        recording = [s for s, waiting in self._open.items() if sender in waiting]
        if not recording:
            return NOTHING
        return Receipt(
            in_flight=tuple(InFlight(self.name, sender, s, s, message, now) for s in recording)
        )

    def receive_marker(self, marker: Marker, sender: str, now: float) -> Receipt:
        """The marker of ``marker.snapshot_id`` closes the channel from ``sender``."""
        taken = self._take(marker.snapshot_id, now)
        waiting = self._open.get(marker.snapshot_id)
        if waiting is not None:
            waiting.discard(sender)
        return self._receipt(taken)

    def notify(self, snapshot_id: int, now: float) -> Receipt:
        """Start snapshot ``snapshot_id`` here (this node is the initiator)."""
        return self._receipt(self._take(snapshot_id, now))

    def _take(self, snapshot_id: int, now: float) -> tuple[tuple[str, Marker], ...]:
        if require_id(snapshot_id) <= self.current:
            return ()
        state = self._capture()
        outgoing = []
        for s in range(self.current + 1, snapshot_id + 1):
            self._open[s] = set(self.peers)
            self._unreported[s] = LocalSnapshot(self.name, s, s, now, state)
            outgoing.extend((peer, Marker(s)) for peer in self.peers)
        self.current = snapshot_id
        return tuple(outgoing)

    def _receipt(self, outgoing: tuple[tuple[str, Marker], ...]) -> Receipt:
        done = [s for s, waiting in self._open.items() if not waiting]
        for s in done:
            del self._open[s]
        reports = tuple(self._unreported.pop(s) for s in done)
        if not reports and not outgoing:
            return NOTHING
        return Receipt(snapshots=reports, outgoing=outgoing)


class PollingNode:
    """Records its state whenever a newer snapshot is requested; nothing else."""

    def __init__(self, name: str, capture: Callable[[], Any]):
        self.name = name
        self.current = 0
        self._capture = capture

    def send(self, peer: str | None, now: float) -> int:
        return UNMARKED

    def receive(self, wire: int, sender: str | None, now: float, message: Any = None) -> Receipt:
        return NOTHING

    def notify(self, snapshot_id: int, now: float) -> Receipt:
        if require_id(snapshot_id) <= self.current:
            return NOTHING
        local = LocalSnapshot(self.name, self.current + 1, snapshot_id, now, self._capture())
        self.current = snapshot_id
        return Receipt(snapshots=(local,))
