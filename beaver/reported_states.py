"""The states in-group nodes reported, kept by the snapshot ids each covers.

A node's local snapshot records one state for ids ``first..last``; the
coordinator keeps, per node, those ranges and states in report order (so
sorted by id) until the snapshots they cover are finished and forgotten.
Only what assembling a snapshot needs is kept: the range and the state,
not the report (its message counts were added up when it was taken).
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(init=False)
class ReportedStates:
    """Per node, the ``first..last`` ranges of its local snapshots and their states (equal
    when they hold the same)."""

    _firsts: dict[str, array]
    _lasts: dict[str, array]
    _states: dict[str, list[Any]]

    def __init__(self, nodes: Iterable[str]):
        self._firsts: dict[str, array] = {}
        self._lasts: dict[str, array] = {}
        self._states: dict[str, list[Any]] = {}
        for node in nodes:
            self._firsts[node], self._lasts[node], self._states[node] = (
                array("q"), array("q"), [])

    def add(self, node: str, first: int, last: int, state: Any) -> None:
        """``node`` recorded ``state`` for ids ``first..last`` (after every range it had)."""
        self._firsts[node].append(first)
        self._lasts[node].append(last)
        self._states[node].append(state)

    def covering(self, k: int) -> dict[str, Any]:
        """Each node's state for snapshot ``k``, for the nodes that reported one."""
        states = {}
        for node, lasts in self._lasts.items():
            i = bisect_left(lasts, k)
            if i < len(lasts) and self._firsts[node][i] <= k:
                states[node] = self._states[node][i]
        return states

    def forget(self, k: int, keep: Collection[int]) -> None:
        """Drop every range that ends at or below ``k`` and covers no id in ``keep``."""
        below = min(k + 1, min(keep, default=k + 1))  # ranges ending below it all go
        for node, lasts in self._lasts.items():
            firsts, states = self._firsts[node], self._states[node]
            gone = bisect_left(lasts, below)
            del firsts[:gone], lasts[:gone], states[:gone]
            if below > k:  # every range left ends above k: all are kept
                continue
            kept = [i for i, (first, last) in enumerate(zip(firsts, lasts, strict=True))
                    if last > k or any(s in keep for s in range(first, last + 1))]
            self._firsts[node] = array("q", (firsts[i] for i in kept))
            self._lasts[node] = array("q", (lasts[i] for i in kept))
            self._states[node] = [states[i] for i in kept]
