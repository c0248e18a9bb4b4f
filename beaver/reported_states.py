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

    _ranges: dict[str, tuple[array, array, list[Any]]]
    """Per node: the first ids, the last ids and the states of its ranges, in order."""

    def __init__(self, nodes: Iterable[str]):
        self._ranges = {node: (array("q"), array("q"), []) for node in nodes}

    def add(self, node: str, first: int, last: int, state: Any) -> None:
        """``node`` recorded ``state`` for ids ``first..last`` (after every range it had)."""
        firsts, lasts, states = self._ranges[node]
        firsts.append(first)
        lasts.append(last)
        states.append(state)

    def covering(self, k: int) -> dict[str, Any]:
        """Each node's state for snapshot ``k``, for the nodes that reported one."""
        found = {}
        for node, (firsts, lasts, states) in self._ranges.items():
            i = bisect_left(lasts, k)
            if i < len(lasts) and firsts[i] <= k:
                found[node] = states[i]
        return found

    def forget(self, k: int, keep: Collection[int]) -> None:
        """Drop every range that ends at or below ``k`` and covers no id in ``keep``."""
        below = min(k + 1, min(keep, default=k + 1))  # ranges ending below it all go
        for node, (firsts, lasts, states) in self._ranges.items():
            gone = bisect_left(lasts, below)
            del firsts[:gone], lasts[:gone], states[:gone]
            if below > k:  # every range left ends above k: all are kept
                continue
            kept = [i for i, (first, last) in enumerate(zip(firsts, lasts, strict=True))
                    if last > k or any(s in keep for s in range(first, last + 1))]
            self._ranges[node] = (array("q", (firsts[i] for i in kept)),
                                  array("q", (lasts[i] for i in kept)),
                                  [states[i] for i in kept])
