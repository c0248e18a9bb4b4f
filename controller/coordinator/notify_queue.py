"""One node's notifications waiting for their point of the notify spread, on one timer.

A node told about snapshot id k takes one local snapshot covering every id
up to k (under every protocol of the core), so a waiting notification of id
j is useless once one of a newer id reaches the node first. Of the
notifications given to :class:`NotifyQueue`, the ones a newer one would
overtake are dropped at once, so those left are in the order of both their
ids and their times, and one timer, for the first of them, is enough: the
coordinator's loop wakes once per notification that leaves, however many
snapshots a burst starts.
"""

from __future__ import annotations

import asyncio
from bisect import bisect_left
from collections.abc import Callable


class NotifyQueue:
    """Waiting notifications of one node: ``(id, time)`` pairs, ids and times increasing.

    ``due(id)`` is called on the loop when a notification's time comes;
    ``dropped(count)`` for each one dropped before its time.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, due: Callable[[int], None],
                 dropped: Callable[[int], None]):
        self.loop, self.due, self.dropped = loop, due, dropped
        self._ids: list[int] = []
        self._times: list[float] = []
        self._timer: asyncio.TimerHandle | None = None

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, snapshot_id: int, at: float) -> None:
        """Notify ``snapshot_id`` at loop time ``at``, unless a newer one waiting goes first."""
        ids, times = self._ids, self._times
        place = bisect_left(ids, snapshot_id)
        if place < len(ids) and (ids[place] == snapshot_id or times[place] <= at):
            self.dropped(1)  # a notification of this id or a newer one leaves no later
            return
        overtaken = bisect_left(times, at, hi=place)  # older ones due at ``at`` or later
        del ids[overtaken:place], times[overtaken:place]
        self.dropped(place - overtaken)
        ids.insert(overtaken, snapshot_id)
        times.insert(overtaken, at)
        if overtaken == 0:
            self._arm()

    def drop_through(self, useless: Callable[[int], bool]) -> None:
        """Drop the first notifications while ``useless(id)`` (a test that, once false for
        an id, is false for every newer one)."""
        count = 0
        while count < len(self._ids) and useless(self._ids[count]):
            count += 1
        if count:
            del self._ids[:count], self._times[:count]
            self.dropped(count)
            self._arm()

    def cancel(self) -> None:
        """Drop every waiting notification without a word."""
        self._ids.clear()
        self._times.clear()
        self._arm()

    def _arm(self) -> None:
        """One timer, for the first waiting notification (none when none waits)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._ids:
            self._timer = self.loop.call_at(self._times[0], self._fire)

    def _fire(self) -> None:
        self._timer = None
        snapshot_id = self._ids.pop(0)
        self._times.pop(0)
        self._arm()
        self.due(snapshot_id)
