"""The single-threaded event loop the host processes share, and how signals stop it.

The in-group runtime, the relay and the client each wait on a few sockets
with one ``selectors`` selector and decide their own timeouts (timers, the
next piece of work). :class:`StoppableLoop` is that skeleton: :meth:`watch`
names the handler of a socket, :meth:`wait` waits up to a timeout and calls
the handlers of the sockets that became readable, and ``stopped`` ends the
owner's loop. Once ``stopped`` is set, no further handler of the same wake-up
runs, so a ``stop`` is honoured right after the event that carried it.

:meth:`request_stop` is safe from a signal handler: besides setting
``stopped`` it writes a byte to a socket pair the selector watches, so a
wait in progress returns at once. :func:`stop_on_signals` installs it for
SIGTERM and SIGINT and makes the pair the process's ``signal.set_wakeup_fd``,
so a signal that lands between the owner's check of ``stopped`` and the
next wait still wakes the loop.
"""

from __future__ import annotations

import selectors
import signal
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class StoppableLoop:
    """A selector over the owner's sockets plus a wake-up socket pair for stopping."""

    def __init__(self) -> None:
        self.stopped = False
        self._wake_reader, self._wake_writer = socket.socketpair()
        self._wake_reader.setblocking(False)
        self._wake_writer.setblocking(False)
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._wake_reader, selectors.EVENT_READ, self._on_wake)

    def watch(self, sock: socket.socket, on_readable: Callable[[], None]) -> None:
        """Call ``on_readable()`` from :meth:`wait` whenever ``sock`` has data."""
        self._selector.register(sock, selectors.EVENT_READ, on_readable)

    def wait(self, timeout: float | None) -> None:
        """Wait up to ``timeout`` seconds (None: until an event), then handle what is ready."""
        for key, _events in self._selector.select(timeout):
            if self.stopped:
                break
            key.data()

    def request_stop(self) -> None:
        """Stop after the event being handled (safe from a signal handler)."""
        self.stopped = True
        try:
            self._wake_writer.send(b"\0")
        except BlockingIOError:
            pass

    @property
    def wakeup_fd(self) -> int:
        """A descriptor for ``signal.set_wakeup_fd``: a signal then wakes the loop."""
        return self._wake_writer.fileno()

    def close(self) -> None:
        """Release the selector and the wake-up pair (the watched sockets stay open)."""
        self._selector.close()
        self._wake_reader.close()
        self._wake_writer.close()

    def _on_wake(self) -> None:
        try:
            self._wake_reader.recv(4096)
        except BlockingIOError:
            pass


@contextmanager
def stop_on_signals(loop: StoppableLoop) -> Iterator[None]:
    """SIGTERM and SIGINT stop ``loop`` inside the block; leaving it closes the loop."""
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: loop.request_stop())
    signal.set_wakeup_fd(loop.wakeup_fd)
    try:
        yield
    finally:
        signal.set_wakeup_fd(-1)
        loop.close()
