"""Noticing a component of a run that died: an agent, a relay, a client, the controller, a bridge.

A dead agent never reports its local state, so every later snapshot would
wait for it until the run's timeout; a dead controller fails every gateway
update. :class:`Watch` is a thread that asks each component, every
``interval`` seconds, whether it is still alive (a check returns None, or
the reason it is not: ``exited with status 1``, ``killed by signal 9``,
``bridge r5gw1 is gone``). The first time a check fails it records a
:class:`Failure` and calls ``on_failure``; the emulation then tells the
coordinator service (:meth:`controller.coordinator.service.SnapshotService.fail`),
which stores the open snapshots as they stand and ends the take, and
``beaver run`` names the failure in its summary and exits 1.

Processes are watched by their handles (``Popen.poll``), bridges by name in
what their switch daemons list (``ovs-vsctl list-br`` of each); nothing else
is signalled or touched.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import asdict, dataclass
from typing import Any

Check = Callable[[], str | None]


@dataclass(frozen=True)
class Failure:
    component: str
    reason: str
    noticed_at: float
    """``time.monotonic()`` when the watch saw it."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def exit_reason(code: int | None) -> str | None:
    """None for a running process (no exit code yet), else how it ended."""
    if code is None:
        return None
    if code < 0:
        return f"killed by signal {-code} ({signal.Signals(-code).name})"
    return f"exited with status {code}"


def bridges_gone(names: Collection[str],
                 list_bridges: Callable[[], set[str] | None]) -> Check:
    """A check that fails once one of the bridges ``names`` no longer exists.

    ``list_bridges()`` names the bridges that exist (None: Open vSwitch is busy, ask
    again next time).
    """
    def check() -> str | None:
        listed = list_bridges()
        if listed is None:
            return None
        gone = sorted(set(names) - listed)
        return f"bridge {', '.join(gone)} is gone" if gone else None
    return check


class Watch:
    """Runs ``checks`` (component name -> check) every ``interval`` seconds in a thread."""

    def __init__(self, checks: dict[str, Check], on_failure: Callable[[Failure], None],
                 interval: float = 0.5) -> None:
        self.checks = dict(checks)
        self.on_failure = on_failure
        self.interval = interval
        self.failures: list[Failure] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="watch")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop watching (before the components are stopped on purpose)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            for component, check in list(self.checks.items()):
                reason = check()
                if reason is not None and not self._stop.is_set():
                    del self.checks[component]
                    failure = Failure(component, reason, time.monotonic())
                    self.failures.append(failure)
                    self.on_failure(failure)
