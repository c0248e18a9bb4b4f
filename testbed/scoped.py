"""Parts of the testbed that exist only inside ``with``: started on entry, removed on exit.

A :class:`Scoped` subclass defines ``_start`` (create everything, keeping a
handle on each thing as soon as it exists) and ``_stop`` (remove what the
handles name, whatever ``_start`` got to). Entering runs ``_start``; if it
fails, ``_stop`` runs before the error goes on, so a failed start leaves
nothing behind. Leaving (normally, by an error or by Ctrl-C) runs ``_stop``.
"""

from __future__ import annotations

from types import TracebackType
from typing import Self


class Scoped:
    def _start(self) -> None:
        raise NotImplementedError

    def _stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        try:
            self._start()
        except BaseException:
            self._stop()
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self._stop()
