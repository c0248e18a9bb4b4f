"""SIGTERM and SIGHUP end a command that builds networks exactly as Ctrl-C does.

Python turns SIGINT into :class:`KeyboardInterrupt`, and every part of the
testbed removes what it created when one passes through it (``with``
blocks, ``except BaseException`` around start-up). SIGTERM (``timeout``,
``kill``, a service manager) and SIGHUP (the terminal went away) would end
the process on the spot and leave bridges, the controller and host
processes behind. :func:`raise_on_termination` makes them raise
:class:`Terminated`, a ``KeyboardInterrupt``, so the same cleanup runs. Only
the first such signal raises: a repeated SIGTERM during the cleanup does not
cut it short. SIGKILL cannot be caught; the run record covers it
(:mod:`topologies.record`, ``beaver clean``).
"""

from __future__ import annotations

import signal
from types import FrameType

SIGNALS = (signal.SIGTERM, signal.SIGHUP)


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP arrived; the exit status is 128 + the signal number, as the shell's."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(signal.Signals(signum).name)

    @property
    def exit_status(self) -> int:
        return 128 + self.signum


def raise_on_termination() -> None:
    """From now on, the first SIGTERM or SIGHUP raises :class:`Terminated` (main thread)."""
    raised = []

    def terminate(signum: int, frame: FrameType | None) -> None:
        if not raised:
            raised.append(signum)
            raise Terminated(signum)

    for number in SIGNALS:
        signal.signal(number, terminate)
