"""Waiting for a condition in the coordinator's event loop.

Everything the service waits for (every agent connected, snapshots started
and stored, restores acknowledged, enough external chains measured) is a
condition over state that only the loop changes. Whoever changes it calls
:meth:`Changes.wake`; :meth:`Changes.wait_for` checks its condition again after
every wake-up, and also at a time the caller names (the core's next possible
start), until it holds or the timeout is over (:class:`TimeoutError`, with the
caller's explanation). A component of the run that died (:meth:`Changes.fail`)
ends the wait in progress and every later one with :class:`ComponentFailed`.
All methods run on the loop's thread.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class ComponentFailed(RuntimeError):
    """A component the run needs died (:meth:`SnapshotService.fail`)."""


class Changes:
    """The loop's one "something changed" signal, and the first failure reported.

    A wait is a bare future of the loop with a timer beside it (no task, no
    ``asyncio.wait_for`` per wait): the coordinator waits and is woken once
    per turn of its loop while snapshots start and finish.
    """

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiters: set[asyncio.Future[None]] = set()
        self.failure: str | None = None
        """The first component failure reported: every wait ends with it."""

    def open(self) -> None:
        """Bind the signal to the running loop; call it on the loop's thread before the
        first wait."""
        self._loop = asyncio.get_running_loop()

    def wake(self) -> None:
        assert self._loop is not None
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)

    def fail(self, what: str) -> None:
        self.failure = self.failure or what
        if self._loop is not None:
            self.wake()

    async def wait_for(
        self, condition: Callable[[], bool], timeout: float, explain: Callable[[], str],
        wake_at: Callable[[], float | None] = lambda: None,
    ) -> None:
        """Wait until ``condition()`` holds, checking it after every change and at
        ``wake_at()`` (a ``time.monotonic()`` time, or None)."""
        assert self._loop is not None
        deadline = time.monotonic() + timeout
        while not condition():
            if self.failure is not None:
                raise ComponentFailed(self.failure)
            now = time.monotonic()
            remaining = deadline - now
            if remaining <= 0:
                raise TimeoutError(explain())
            wake = wake_at()
            if wake is not None:
                remaining = max(0.0, min(remaining, wake - now))
            await self._changed(remaining)

    async def _changed(self, timeout: float) -> None:
        """Return after the next :meth:`wake`, or after ``timeout`` seconds."""
        assert self._loop is not None
        waiter = self._loop.create_future()
        timer = self._loop.call_later(timeout, _wake_up, waiter)
        self._waiters.add(waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiters.discard(waiter)


def _wake_up(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
