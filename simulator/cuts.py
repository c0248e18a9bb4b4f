"""The ground-truth cuts of a simulated run: where each node's capture callback ran.

A node's capture callback returns a :class:`NodeState` holding the node's
position in its event sequence when it ran. When the node reports a local
snapshot for ids ``first..last`` with that state, the cut of every one of
those ids is that position: wherever and whenever the node called its
callback, not where the protocol says it should have. The cuts go into the
:class:`~oracle.EventLog` the oracle judges.

A node that reports a state its callback did not return, or a state
captured before the one it reported for an earlier snapshot, gets a
:class:`~oracle.LogError`. Reports may come out of order (Chandy-Lamport
reports a snapshot when its channels close); ids a node never reported a
state for take the cut of its next reported state (the coordinator finds
those snapshots incomplete).

The nodes of a :class:`~beaver.node_group.NodeGroup` (the core's own rule, the
default for Beaver and Lai-Yang) are captured by the world itself, which the
group tells the ids each capture is for: there the cut is logged as the
capture runs (:attr:`CutLog.log_cut`), before anything is reported.
"""

from __future__ import annotations

from array import array
from itertools import chain, repeat
from typing import NamedTuple, NoReturn

import numpy as np

from beaver.records import LocalSnapshot, MemberSnapshot
from oracle import EventLog, LogError


class NodeState(NamedTuple):
    """The application state a local snapshot records: counters and the log position."""

    position: int
    sent: int
    received: int


class CutLog:
    """Turns the local snapshots nodes report into the log's capture positions.

    The cuts are kept as one log in report order (node, the last id a cut is for, its
    position) and written into the :class:`~oracle.EventLog` at :meth:`close`, node by
    node: a report appends where the one before did, rather than at the end of its own
    node's list, which in a large in-group is memory nothing else touched lately.
    """

    def __init__(self, log: EventLog, names: list[str]):
        self._names = names
        self._captures = [log.captures[name] for name in names]
        self._next = array("q", [1]) * len(names)
        """Per node, the first id it has no cut for yet."""
        self._latest = array("q", [-1]) * len(names)
        """Per node, the position of its latest cut (-1: none)."""
        self._cuts = array("q")
        """The cuts in report order, three numbers each: node, last id, position."""
        self._early: dict[int, dict[int, int]] = {}
        """Per node, cuts reported for ids after a gap in its log (out of order)."""
        self.log_cut = self._cuts.extend
        """``log_cut((node, last, position))``: node ``node`` (by index) ran its capture at
        ``position`` for its local snapshot ending at id ``last``, following its previous one
        (a member of a :class:`~beaver.node_group.NodeGroup`, whose captures the world runs
        itself; one call, a hot path)."""

    def reported(self, node: int, local: LocalSnapshot | MemberSnapshot) -> None:
        """Node ``node`` (by index) reported ``local``."""
        state = local.state
        if type(state) is not NodeState:
            raise LogError(f"{self._names[node]} reported a state its capture callback did not "
                           f"return: {state!r:.80}")
        first, position = local.first_id, state.position
        if first == self._next[node] and not (self._early and node in self._early):
            if position < self._latest[node]:
                self._out_of_order(node)
            last = local.last_id
            self._next[node] = last + 1
            self._latest[node] = position
            self._cuts.extend((node, last, position))
            return
        early = self._early.setdefault(node, {})
        for k in range(max(first, self._next[node]), local.last_id + 1):
            early.setdefault(k, position)
        self._drain(node, early)

    def captured_many(self, nodes: np.ndarray, lasts: np.ndarray, positions: list[int]) -> None:
        """:attr:`log_cut` of each of ``nodes`` with its ``lasts`` and ``positions`` entries."""
        cuts = np.column_stack((nodes, lasts, np.array(positions, dtype=np.int64)))
        self._cuts.frombytes(cuts.astype(np.int64, copy=False).tobytes())

    def close(self) -> None:
        """At the end of the run: fill the gaps with each node's next reported cut, and
        write every cut into the log."""
        for node, early in list(self._early.items()):
            following = None
            for k in range(max(early), self._next[node] - 1, -1):
                if k in early:
                    following = early[k]
                else:
                    early[k] = following
            self._drain(node, early)
        cuts = np.frombuffer(self._cuts, dtype=np.int64).reshape(-1, 3)
        nodes, lasts, positions = cuts[np.argsort(cuts[:, 0], kind="stable")].T
        del cuts
        bounds = np.searchsorted(nodes, np.arange(len(self._names) + 1)).tolist()
        for node, captures in enumerate(self._captures):
            low, high = bounds[node], bounds[node + 1]
            if low < high:  # each cut's position once per id it is for
                counts = np.diff(lasts[low:high], prepend=len(captures)).tolist()
                captures.extend(chain.from_iterable(
                    map(repeat, positions[low:high].tolist(), counts)))
        del self._cuts[:]

    def _drain(self, node: int, early: dict[int, int]) -> None:
        while self._next[node] in early:
            position = early.pop(self._next[node])
            if position < self._latest[node]:
                self._out_of_order(node)
            self._cuts.extend((node, self._next[node], position))
            self._next[node] += 1
            self._latest[node] = position
        if not early:
            del self._early[node]

    def _out_of_order(self, node: int) -> NoReturn:
        k = self._next[node]
        raise LogError(f"{self._names[node]} reported for snapshot {k} a state captured before "
                       f"its state for snapshot {k - 1}")
