"""The states in-group nodes reported, kept by the snapshot ids each covers.

A node's local snapshot records one state for ids ``first..last``; the
coordinator keeps those ranges and states, in the order they were reported,
until the snapshots they cover are finished and forgotten. Only what
assembling a snapshot needs is kept: the node, the range and the state, not
the report (its message counts were added up when it was taken).

The ranges of every node are one log, not one list per node: a report is a
few appends at the end of four flat containers, where per-node lists would
make it touch memory of its own node's, cold in a large in-group. Reading a
snapshot's states (:meth:`ReportedStates.covering`) and forgetting are
vectorised over the log; they are rare next to reports.
"""

from __future__ import annotations

from array import array
from collections.abc import Collection, Iterable
from typing import Any

import numpy as np


class ReportedStates:
    """The ``first..last`` ranges nodes reported, with their states, in report order
    (two holders are equal when they keep the same ranges and states per node)."""

    def __init__(self, nodes: Iterable[str]):
        self._known = frozenset(nodes)
        self._nodes: list[str] = []
        self._firsts = array("q")
        self._lasts = array("q")
        self._states: list[Any] = []

    def add(self, node: str, first: int, last: int, state: Any) -> None:
        """``node`` recorded ``state`` for ids ``first..last`` (after every range it had)."""
        self._nodes.append(node)
        self._firsts.append(first)
        self._lasts.append(last)
        self._states.append(state)

    def add_many(self, nodes: list[str], firsts: np.ndarray, lasts: np.ndarray,
                 states: list[Any]) -> None:
        """``add`` of each ``nodes[j]``, ``firsts[j]``, ``lasts[j]``, ``states[j]`` in turn
        (the ids as int64 arrays)."""
        self._nodes += nodes
        self._firsts.frombytes(np.ascontiguousarray(firsts, dtype=np.int64).tobytes())
        self._lasts.frombytes(np.ascontiguousarray(lasts, dtype=np.int64).tobytes())
        self._states += states

    def covering(self, k: int) -> dict[str, Any]:
        """Each node's state for snapshot ``k``, for the nodes that reported one (in the
        order of their names)."""
        found = np.flatnonzero(self._covers(k)).tolist()
        nodes, states = self._nodes, self._states
        return {nodes[i]: states[i] for i in sorted(found, key=nodes.__getitem__)}

    def forget(self, k: int, keep: Collection[int]) -> None:
        """Drop every range that ends at or below ``k`` and covers no id in ``keep``."""
        if not self._states:
            return
        kept = np.frombuffer(self._lasts, dtype=np.int64) > k
        for snapshot_id in keep:
            if snapshot_id <= k:
                kept |= self._covers(snapshot_id)
        if kept.all():
            return
        indices = np.flatnonzero(kept)
        self._firsts = array("q", np.frombuffer(self._firsts, dtype=np.int64)[indices].tobytes())
        self._lasts = array("q", np.frombuffer(self._lasts, dtype=np.int64)[indices].tobytes())
        indices = indices.tolist()
        self._nodes = [self._nodes[i] for i in indices]
        self._states = [self._states[i] for i in indices]

    def _covers(self, k: int) -> np.ndarray:
        """Which ranges of the log cover id ``k``."""
        if not self._states:
            return np.zeros(0, dtype=bool)
        firsts = np.frombuffer(self._firsts, dtype=np.int64)
        lasts = np.frombuffer(self._lasts, dtype=np.int64)
        return (firsts <= k) & (lasts >= k)

    def _by_node(self) -> dict[str, list[tuple[int, int, Any]]]:
        ranges: dict[str, list[tuple[int, int, Any]]] = {node: [] for node in self._known}
        for node, first, last, state in zip(self._nodes, self._firsts, self._lasts,
                                            self._states, strict=True):
            ranges[node].append((first, last, state))
        return ranges

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ReportedStates):
            return NotImplemented
        return self._by_node() == other._by_node()

    __hash__ = None  # type: ignore[assignment]
