"""A discrete-event engine: a heap of timed calls and a simulated clock.

Simulated time is a float in seconds. Events at the same time run in the
order they were scheduled (a ticket, a sequence number, breaks ties), so a
run is a pure function of its inputs and seed.

An event costs one heap push, one heap pop and the call itself. Callers on
the hot paths (a message per event) push ``(time, ticket(), action, args)``
onto :attr:`Engine.queue` themselves rather than through :meth:`Engine.at`,
which saves a Python call per event.

While the engine runs, Python's cyclic garbage collector is paused: a run
allocates millions of short-lived, acyclic records while it keeps millions
of long-lived objects, and the collector's repeated passes over the
long-lived ones cost more than the simulation itself (and grow with its
size). Reference counting still frees everything; the collector runs again
when the engine stops.
"""

from __future__ import annotations

import gc
import heapq
import itertools
from collections.abc import Callable
from typing import Any

push = heapq.heappush
"""``push(engine.queue, (time, engine.ticket(), action, args))`` schedules ``action(*args)``."""


class Engine:
    """Runs scheduled calls in time order; ``now`` is the time of the running one."""

    def __init__(self) -> None:
        self.now = 0.0
        self.events_run = 0
        self.queue: list[tuple[float, int, Callable[..., Any], tuple[Any, ...]]] = []
        """The heap of events: time, ticket, action and its arguments."""
        self.ticket: Callable[[], int] = itertools.count().__next__
        """The next ticket: the order of events scheduled for the same time."""

    def at(self, time: float, action: Callable[..., Any], *args: Any) -> None:
        """Run ``action(*args)`` at simulated ``time`` (callers keep ``time >= now``)."""
        push(self.queue, (time, self.ticket(), action, args))

    def after(self, delay: float, action: Callable[..., Any], *args: Any) -> None:
        """Run ``action(*args)`` ``delay >= 0`` seconds from now."""
        push(self.queue, (self.now + delay, self.ticket(), action, args))

    def run(
        self,
        progress: Callable[[], None] | None = None,
        progress_every: int = 1 << 17,
    ) -> None:
        """Run until no event is left, calling ``progress`` every ``progress_every`` events."""
        queue, pop = self.queue, heapq.heappop
        before, run = self.events_run, 0
        collecting = gc.isenabled()
        gc.disable()
        try:
            while queue:
                self.now, _, action, args = pop(queue)
                action(*args)
                run += 1
                if progress is not None and run % progress_every == 0:
                    self.events_run = before + run
                    progress()
        finally:
            self.events_run = before + run
            if collecting:
                gc.enable()
