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
"""

from __future__ import annotations

from typing import NamedTuple

from beaver.records import LocalSnapshot
from oracle import EventLog, LogError


class NodeState(NamedTuple):
    """The application state a local snapshot records: counters and the log position."""

    position: int
    sent: int
    received: int


class CutLog:
    """Turns the local snapshots nodes report into the log's capture positions."""

    def __init__(self, log: EventLog, names: list[str]):
        self._names = names
        self._captures = [log.captures[name] for name in names]
        self._early: dict[int, dict[int, int]] = {}
        """Per node, cuts reported for ids after a gap in its log (out of order)."""

    def reported(self, node: int, local: LocalSnapshot) -> None:
        """Node ``node`` (by index) reported ``local``."""
        state = local.state
        if type(state) is not NodeState:
            raise LogError(f"{self._names[node]} reported a state its capture callback did not "
                           f"return: {state!r:.80}")
        captures = self._captures[node]
        early = self._early.get(node) if self._early else None
        first, position = local.first_id, state.position
        if early is None and first == len(captures) + 1:
            if captures and position < captures[-1]:
                self._check_order(node, position)
            if first == local.last_id:
                captures.append(position)
            else:
                captures.extend([position] * (local.last_id - first + 1))
            return
        early = self._early.setdefault(node, {})
        for k in range(max(local.first_id, len(captures) + 1), local.last_id + 1):
            early.setdefault(k, state.position)
        self._drain(node, early)

    def close(self) -> None:
        """At the end of the run: fill the gaps with each node's next reported cut."""
        for node, early in list(self._early.items()):
            following = None
            for k in range(max(early), len(self._captures[node]), -1):
                if k in early:
                    following = early[k]
                else:
                    early[k] = following
            self._drain(node, early)

    def _drain(self, node: int, early: dict[int, int]) -> None:
        captures = self._captures[node]
        while len(captures) + 1 in early:
            position = early.pop(len(captures) + 1)
            self._check_order(node, position)
            captures.append(position)
        if not early:
            del self._early[node]

    def _check_order(self, node: int, position: int) -> None:
        captures = self._captures[node]
        if captures and position < captures[-1]:
            raise LogError(f"{self._names[node]} reported for snapshot {len(captures) + 1} a "
                           f"state captured before its state for snapshot {len(captures)}")
