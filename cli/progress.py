"""Progress of a long command on stderr: a bar on a terminal, a few plain lines elsewhere.

On a terminal, :class:`Progress` draws one line that updates in place (tqdm):
how many of the total are done, the rate and the time left. Messages go
through :meth:`Progress.message`, which prints them above the bar, and so
does everything logged while the bar is up (``with Progress(...)``), so
they never run into it. Off a terminal (a pipe, a log file) it prints a plain
line each tenth of the way and the messages as they come.
"""

from __future__ import annotations

import sys
from typing import TextIO

from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

PLAIN_STEPS = 10
"""Off a terminal: one line each 1/PLAIN_STEPS of the total."""


class Progress:
    """``done`` of ``total`` ``unit``; ``describe`` adds what else to say (e.g. stored)."""

    def __init__(self, total: int, unit: str, stream: TextIO | None = None):
        self.total, self.unit = total, unit
        self.stream = stream or sys.stderr
        self._bar = (tqdm(total=total, unit=f" {unit}", file=self.stream, dynamic_ncols=True,
                          leave=True)
                     if self.stream.isatty() else None)
        self._step = max(1, total // PLAIN_STEPS)
        self._printed = -1
        self._logging = logging_redirect_tqdm() if self._bar is not None else None

    def update(self, done: int, note: str = "") -> None:
        if self._bar is not None:
            self._bar.update(done - self._bar.n)
            if note:
                self._bar.set_postfix_str(note, refresh=False)
            return
        if done // self._step > self._printed:
            self._printed = done // self._step
            print(f"{self.unit}: {done}/{self.total}" + (f", {note}" if note else ""),
                  file=self.stream, flush=True)

    def message(self, text: str) -> None:
        """A line of its own, above the bar (never inside it)."""
        if self._bar is not None:
            self._bar.write(text, file=self.stream)
        else:
            print(text, file=self.stream, flush=True)

    def close(self) -> None:
        if self._logging is not None:
            self._logging.__exit__(None, None, None)
            self._logging = None
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> Progress:
        if self._logging is not None:
            self._logging.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
