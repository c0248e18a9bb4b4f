"""Why a snapshot is inconsistent: one causal chain that crosses its cut backwards.

Snapshot k is inconsistent when an in-group event inside cut k has a causal
predecessor that is an in-group event outside it (see :mod:`oracle`). Such
a predecessor reaches the effect through a chain of messages: the first
sent by an in-group node after its capture point for k, each next one sent
by the previous one's receiver after that receive (through out-group
processes, or in-group nodes already past their cut), the last received by
an in-group node before its capture point. :func:`violating_chain` finds a
shortest such chain by a breadth-first search over messages.
"""

from __future__ import annotations

from collections import deque

from oracle import EventLog


def violating_chain(log: EventLog, snapshot_id: int) -> list[int]:
    """The message ids of a shortest chain that breaks cut ``snapshot_id`` (empty: none)."""
    where: dict[int, tuple[str, int]] = {}
    """Message -> (receiver, position of the receive)."""
    for process, events in log.events.items():
        for position, event in enumerate(events):
            if event < 0:
                where[~event] = (process, position)

    def cut(process: str) -> int | None:
        """The capture position of ``process`` for this snapshot (None: out-group);
        a node that never captured it has its cut at the end of its log."""
        if process not in log.ingroup:
            return None
        captures = log.captures[process]
        if snapshot_id <= len(captures):
            return captures[snapshot_id - 1]
        return len(log.events.get(process, ()))

    def sends_after(process: str, position: int) -> list[int]:
        return [e for e in log.events.get(process, ())[position:] if e >= 0]

    parent: dict[int, int | None] = {}
    queue: deque[int] = deque()
    for node in sorted(log.ingroup):
        for message in sends_after(node, cut(node) or 0):
            parent[message] = None
            queue.append(message)
    while queue:
        message = queue.popleft()
        if message not in where:
            continue
        receiver, position = where[message]
        boundary = cut(receiver)
        if boundary is not None and position < boundary:
            chain = [message]
            while parent[chain[-1]] is not None:
                chain.append(parent[chain[-1]])
            return chain[::-1]
        for following in sends_after(receiver, position + 1):
            if following not in parent:
                parent[following] = message
                queue.append(following)
    return []
