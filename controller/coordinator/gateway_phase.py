"""The gateway phase of snapshots: gateway updates, pipelined, their answers fed to the core.

The coordinator knows the gateway app only through :class:`GatewayUpdater`:
the testbed passes one that drives the app's control interface
(:class:`testbed.gateway_updater.ControllerGateways`); tests pass fakes. An
update raises every gateway in parallel; updates are *pipelined*: the
next may be sent before the previous one is answered, every gateway
applies them in the order sent, and the answers (each gateway's
:class:`~beaver.records.GatewayTiming`) come back in that order.

:class:`UpdatePipeline` keeps up to ``window`` updates outstanding (1: each
snapshot's update is sent only after the previous one was answered) and
reads the answers on one task. For each it gives the core the
acknowledgements in the order they came (the last one is t1) and fails
every gateway without one (:func:`phase_outcome`); the timings are kept for
the store.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Protocol

from beaver.coordinator import Coordinator
from beaver.records import Command, GatewayTiming

log = logging.getLogger("beaver.snapshots")

NO_ACK = "no acknowledgement"
"""The failure of a gateway the update reported nothing about."""

PhaseDone = Callable[[int, list[Command], dict[str, GatewayTiming]], None]
"""Called with a snapshot id, the core's commands and each gateway's timing."""


class GatewayUpdater(Protocol):
    """The gateway app as the coordinator sees it."""

    def gateways(self) -> list[str]:
        """The gateways' names."""
        ...

    def send_set_id(self, snapshot_id: int) -> None:
        """Start raising every gateway to ``snapshot_id``, after every update sent before."""
        ...

    def next_update(self) -> Iterable[GatewayTiming]:
        """Block until the oldest update not answered yet is; each gateway's part of it."""
        ...


def phase_outcome(
    core: Coordinator, k: int, reported: Iterable[GatewayTiming], failure: str = NO_ACK
) -> tuple[list[Command], dict[str, GatewayTiming]]:
    """Feed snapshot ``k``'s gateway answers to the core: the core's commands and each
    gateway's timing. A gateway without an acknowledgement fails with ``failure``."""
    answers = {t.gateway: t for t in reported}
    commands: list[Command] = []
    timings: dict[str, GatewayTiming] = {}
    acked = sorted((t.acked_at, t.gateway) for t in answers.values()
                   if not t.failed and t.acked_at is not None)
    for acked_at, gateway in acked:
        timings[gateway] = GatewayTiming(gateway, answers[gateway].sent_at, acked_at)
        commands += core.gateway_acked(gateway, k, acked_at)
    now = time.monotonic()
    for gateway in sorted(set(core.gateways) - set(timings)):
        timing = answers.get(gateway)
        timings[gateway] = GatewayTiming(
            gateway, timing.sent_at if timing else None, None,
            (timing.failure if timing else None) or failure)
        commands += core.gateway_failed(gateway, k, now)
    return commands, timings


class UpdatePipeline:
    """Up to ``window`` gateway updates outstanding; ``done`` gets each outcome, in order.

    Used from one asyncio loop: :meth:`send` on it, the answers read off it
    (in a worker thread) by one task.
    """

    def __init__(self, core: Coordinator, updater: GatewayUpdater, window: int,
                 done: PhaseDone):
        if window < 1:
            raise ValueError(f"at least one gateway update must be allowed, got {window}")
        self.core, self.updater, self.window, self.done = core, updater, window, done
        self.outstanding: deque[int] = deque()
        """Snapshots whose update was sent and not answered yet, oldest first."""
        self._reading: asyncio.Task[None] | None = None

    @property
    def full(self) -> bool:
        return len(self.outstanding) >= self.window

    def send(self, k: int) -> None:
        """Send snapshot ``k``'s update; an updater that raises fails every gateway."""
        try:
            self.updater.send_set_id(k)
        except Exception as error:  # the gateway app is down or broke: the update failed
            log.warning("snapshot %d: gateway update failed: %s", k, error)
            self.done(k, *phase_outcome(self.core, k, (), f"update failed: {error}"))
            return
        self.outstanding.append(k)
        if self._reading is None or self._reading.done():
            self._reading = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        while self.outstanding:
            try:
                reported = list(await asyncio.to_thread(self.updater.next_update))
            except Exception as error:  # the connection broke: every outstanding update failed
                log.warning("gateway updates of snapshots %s failed: %s",
                            list(self.outstanding), error)
                while self.outstanding:
                    k = self.outstanding.popleft()
                    self.done(k, *phase_outcome(self.core, k, (), f"update failed: {error}"))
                return
            k = self.outstanding.popleft()
            self.done(k, *phase_outcome(self.core, k, reported))

    def cancel(self) -> None:
        """Stop reading answers (the service is shutting down)."""
        if self._reading is not None:
            self._reading.cancel()
