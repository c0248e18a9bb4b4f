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
    """The notification waves still on their way, and per node its earliest pending arrival.

    Arrivals are kept node by node: each node has a row of slots, one per wave on its way
    (a wave takes a free slot, and frees it when retired), so the waves a node reads when
    it takes its notifications lie side by side in memory, not one per wave's array.
    """

    def __init__(self, nodes: int, slots: int = 16):
        self.pending_at = array("d", [math.inf]) * nodes
        """Per node, the earliest arrival of a notification it has not taken yet."""
        self._pending = np.frombuffer(self.pending_at)
        """The same memory, as a numpy array."""
        self._nodes = nodes
        self._waves: list[tuple[int, int]] = []
        """Per wave not retired, its id and its slot, in id order."""
        self._slots = 0
        self._free: list[int] = []
        self._arrivals = array("d")
        """Node i's arrivals in slots ``i * slots .. i * slots + slots - 1``."""
        self._grow(slots)

    def told_by(self, now: float) -> list[int]:
        """The nodes that have a notification not taken yet that arrived by ``now``."""
        return self.told(now).tolist()

    def told(self, now: float) -> np.ndarray:
        """:meth:`told_by`, as an array."""
        return np.flatnonzero(self._pending <= now)

    def add(self, snapshot_id: int, arrivals: np.ndarray) -> float:
        """A wave for ``snapshot_id`` with one arrival per node (inf: lost); returns its end."""
        if not self._free:
            self._grow(2 * self._slots)
        slot = self._free.pop()
        self._table()[:, slot] = arrivals
        insort(self._waves, (snapshot_id, slot))
        np.minimum(self._pending, arrivals, out=self._pending)
        finite = arrivals[np.isfinite(arrivals)]
        return float(finite.max()) if finite.size else math.inf

    def retire(self, snapshot_id: int) -> None:
        """The wave's last arrival has passed and every node it reached has taken it."""
        self._free += [slot for wave, slot in self._waves if wave == snapshot_id]
        self._waves = [wave for wave in self._waves if wave[0] != snapshot_id]

    def take_due(self, node: int, current: int, now: float) -> tuple[int, float]:
        """The newest id ``node`` (at ``current``) was told by ``now``, and the earliest such
        arrival; ``(0, inf)`` if none. Forgets them, and notifications made moot by them."""
        due_id, due_at, pending = 0, math.inf, math.inf
        arrivals, row = self._arrivals, node * self._slots
        waves = reversed(self._waves)
        for snapshot_id, slot in waves:  # newest first: the waves still on their way
            if snapshot_id <= current:
                break
            arrival = arrivals[row + slot]
            if arrival <= now:  # the newest that arrived: it is due, and so are older ones
                due_id, due_at = snapshot_id, arrival
                for snapshot_id, slot in waves:
                    if snapshot_id <= current:
                        break
                    arrival = arrivals[row + slot]
                    if arrival < due_at:
                        due_at = arrival
                break
            if arrival < pending:
                pending = arrival
        self.pending_at[node] = pending
        return due_id, due_at

    def take_due_many(self, nodes: np.ndarray, current: np.ndarray,
                      now: float) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`take_due` of each of the distinct ``nodes`` (at ``current``) at once: the
        newest ids (0: none) and earliest arrivals (inf: none), as arrays."""
        if not self._waves or not nodes.size:
            self._pending[nodes] = math.inf
            return np.zeros(nodes.size, dtype=np.int64), np.full(nodes.size, math.inf)
        ids, slots = np.array(self._waves, dtype=np.int64).T
        arrivals = self._table()[nodes[:, None], slots]
        newer = ids > current[:, None]
        arrived = newer & (arrivals <= now)
        # take_due visits the waves newest first: the first arrived one it meets is the due
        # one, and only the waves it met before that one are still pending
        order = np.arange(ids.size)
        due_at_wave = np.where(arrived, order, -1).max(axis=1)
        due = np.where(due_at_wave >= 0, ids[due_at_wave], 0)
        due_at = np.where(arrived, arrivals, math.inf).min(axis=1)
        still = newer & (order > due_at_wave[:, None])
        self._pending[nodes] = np.where(still, arrivals, math.inf).min(axis=1)
        return due, due_at

    def _table(self) -> np.ndarray:
        """The arrivals as a nodes x slots numpy array (the same memory)."""
        return np.frombuffer(self._arrivals).reshape(self._nodes, self._slots)

    def _grow(self, slots: int) -> None:
        """Room for ``slots`` waves on their way at once (the ones there keep their slots)."""
        grown = array("d", [math.inf]) * (self._nodes * slots)
        if self._slots:
            np.frombuffer(grown).reshape(self._nodes, slots)[:, :self._slots] = self._table()
        self._free += range(slots - 1, self._slots - 1, -1)
        self._arrivals, self._slots = grown, slots
