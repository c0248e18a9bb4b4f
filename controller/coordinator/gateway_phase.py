"""The gateway phase of snapshots: gateway updates, pipelined, their answers fed to the core.

The coordinator knows the gateway app only through :class:`GatewayUpdater`:
the testbed passes one that drives the app's control interface
(:class:`testbed.gateway_updater.ControllerGateways`); tests pass fakes. An
update raises every gateway in parallel; updates are *pipelined*: the
next may be sent before the previous one is answered, every gateway
applies them in the order sent, and the answers (each gateway's
:class:`~beaver.records.GatewayTiming`) come back in that order.

:class:`UpdatePipeline` keeps up to ``window`` updates outstanding (1: each
snapshot's update is sent only after the previous one was answered). One
reader thread, started with the first update and kept while the answers
come, blocks on them and hands them to the loop in batches: whatever it read
before the loop next ran is taken in one wake-up, so a burst of answers
costs one thread hop, not one (and a thread pool's hand-off) per update. For
each answer the loop gives the core the acknowledgements in the order they
came (the last one is t1) and fails every gateway without one
(:func:`phase_outcome`); the timings are kept for the store.
"""

from __future__ import annotations

import asyncio
import logging
import threading
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

    :meth:`send` and ``done`` run on one asyncio loop; the answers are read off
    the updater by a reader thread, which starts with the first update sent
    and ends once the updater fails (a later update starts a new one) or the
    pipeline is cancelled.
    """

    def __init__(self, core: Coordinator, updater: GatewayUpdater, window: int,
                 done: PhaseDone):
        if window < 1:
            raise ValueError(f"at least one gateway update must be allowed, got {window}")
        self.core, self.updater, self.window, self.done = core, updater, window, done
        self.outstanding: deque[int] = deque()
        """Snapshots whose update was sent and not answered yet, oldest first."""
        self._reader: _AnswerReader | None = None
        self._cancelled = False

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
        if self._reader is None:
            self._reader = _AnswerReader(self.updater, asyncio.get_running_loop(),
                                         self._take_answers)
        self._reader.expect_one()

    def _take_answers(self, reader: _AnswerReader) -> None:
        """On the loop: every answer the reader read so far, oldest first."""
        while not self._cancelled and reader is self._reader and reader.answers:
            reported = reader.answers.popleft()
            if isinstance(reported, Exception):  # the connection broke: all outstanding failed
                log.warning("gateway updates of snapshots %s failed: %s",
                            list(self.outstanding), reported)
                self._reader = None
                while self.outstanding:
                    k = self.outstanding.popleft()
                    self.done(k, *phase_outcome(self.core, k, (), f"update failed: {reported}"))
                return
            k = self.outstanding.popleft()
            self.done(k, *phase_outcome(self.core, k, reported))

    def cancel(self) -> None:
        """Stop taking answers (the service is shutting down)."""
        self._cancelled = True
        if self._reader is not None:
            self._reader.stop()
            self._reader = None


class _AnswerReader:
    """A thread reading one updater's answers, one per update it was told to expect.

    Each answer (a list of timings, or the exception that ended the reading)
    joins :attr:`answers`; ``hand_over(reader)`` is scheduled on the loop when
    the first answer not yet handed over arrives, so the answers that come while
    the loop is busy are taken together.
    """

    def __init__(self, updater: GatewayUpdater, loop: asyncio.AbstractEventLoop,
                 hand_over: Callable[[_AnswerReader], None]):
        self.updater, self.loop, self.hand_over = updater, loop, hand_over
        self.answers: deque[list[GatewayTiming] | Exception] = deque()
        self._expected = threading.Semaphore(0)
        """Updates sent whose answer this thread has not read yet."""
        self._hand_over_due = False
        self._stopped = False
        threading.Thread(target=self._run, name="gateway answers", daemon=True).start()

    def expect_one(self) -> None:
        """One more update was sent: read its answer."""
        self._expected.release()

    def stop(self) -> None:
        """Read no more answers (one being read is dropped once it comes)."""
        self._stopped = True
        self._expected.release()

    def _run(self) -> None:
        while True:
            self._expected.acquire()
            if self._stopped:
                return
            try:
                answer: list[GatewayTiming] | Exception = list(self.updater.next_update())
            except Exception as error:  # the connection broke: nothing more comes on it
                answer = error
            self.answers.append(answer)
            if not self._hand_over_due:
                self._hand_over_due = True
                try:
                    self.loop.call_soon_threadsafe(self._due)
                except RuntimeError:  # the loop is closed: the service is gone
                    return
            if isinstance(answer, Exception):
                return

    def _due(self) -> None:
        self._hand_over_due = False  # before taking: an answer read from now on asks again
        self.hand_over(self)
