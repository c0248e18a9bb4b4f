"""Notification waves: the coordinator's notifications of a snapshot, one event per wave.

When the gateway phase of snapshot k is over the coordinator tells every
in-group node; each notification has its own delay. Instead of one event
per node, a wave keeps every node's arrival time and has one event, at its
last arrival. A notification takes effect when its node is next touched
(it sends, receives, crashes) or at that last arrival, whichever is first,
with the arrival time as the moment of the snapshot: nothing happened at
the node in between, so the state it records is the one it had at the
arrival. A node that is behind by several waves takes one local snapshot
for all the notifications that arrived, as a node that jumps several ids
at once does.
"""

from __future__ import annotations

import math
from array import array
from bisect import insort

import numpy as np


class Waves:
    """The notification waves still on their way, and per node its earliest pending arrival."""

    def __init__(self, nodes: int):
        self.pending_at = array("d", [math.inf]) * nodes
        """Per node, the earliest arrival of a notification it has not taken yet."""
        self._pending = np.frombuffer(self.pending_at)
        """The same memory, as a numpy array."""
        self._waves: list[tuple[int, array]] = []
        """Per wave not retired, its id and every node's arrival, in id order."""

    def told_by(self, now: float) -> list[int]:
        """The nodes that have a notification not taken yet that arrived by ``now``."""
        return np.flatnonzero(self._pending <= now).tolist()

    def add(self, snapshot_id: int, arrivals: np.ndarray) -> float:
        """A wave for ``snapshot_id`` with one arrival per node (inf: lost); returns its end."""
        insort(self._waves, (snapshot_id, array("d", arrivals.tobytes())))
        np.minimum(self._pending, arrivals, out=self._pending)
        finite = arrivals[np.isfinite(arrivals)]
        return float(finite.max()) if finite.size else math.inf

    def retire(self, snapshot_id: int) -> None:
        """The wave's last arrival has passed and every node it reached has taken it."""
        self._waves = [wave for wave in self._waves if wave[0] != snapshot_id]

    def take_due(self, node: int, current: int, now: float) -> tuple[int, float]:
        """The newest id ``node`` (at ``current``) was told by ``now``, and the earliest such
        arrival; ``(0, inf)`` if none. Forgets them, and notifications made moot by them."""
        due_id, due_at, pending = 0, math.inf, math.inf
        for snapshot_id, arrivals in reversed(self._waves):
            if snapshot_id <= current:
                break
            arrival = arrivals[node]
            if arrival <= now:
                if not due_id:
                    due_id = snapshot_id
                if arrival < due_at:
                    due_at = arrival
            elif not due_id and arrival < pending:
                pending = arrival
        self.pending_at[node] = pending
        return due_id, due_at
