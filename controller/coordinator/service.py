"""The snapshot coordinator service: the protocol core's Coordinator on the management network.

It runs in the root namespace and only translates; every rule (ids,
validity, completeness, the window, which reports are acceptable, assembly)
is the core's (:mod:`beaver.coordinator`). Its parts, one job each:

* :mod:`controller.coordinator.agents`: the agents' connections; their
  ``local`` / ``in_flight`` reports become ``add_local`` / ``add_in_flight``
  calls, the core's :class:`~beaver.records.NotifyNode` commands ``notify``
  messages;
* :mod:`controller.coordinator.gateway_phase`: to start snapshot k (at a given
  rate, while ``can_start(now)``), t0 is taken just before the one parallel
  update of every gateway through a :class:`GatewayUpdater`, whose acks and
  failures go to the core. Updates are pipelined: up to ``update_window``
  snapshots may be in their gateway phase at once (snapshot k+1's update
  leaves before k's is answered); with 1, a snapshot starts only once the
  previous one's gateway phase is over. The core's window (every live id
  within the wire window) still bounds how many are unfinished;
* :mod:`controller.coordinator.persistence`: the snapshots that finish in
  one turn of the loop (the reports and answers one wake-up brought) are
  written to the :class:`~controller.coordinator.store.Store` in one
  transaction at the end of that turn, then the core forgets them;
* :mod:`controller.coordinator.tau`: tau_min, set before the first snapshot
  (given, or measured by :meth:`SnapshotService.wait_chain_time` from the
  shortest external causal chain the agents' ``counters`` carry) and, with
  :meth:`SnapshotService.follow_chains`, lowered by shorter chains later.

:meth:`SnapshotService.restore` sends each agent a state and its channel
state and waits for every ``restored``.

The service owns one thread running an asyncio loop; the public methods are
called from any other thread and block until the loop has done the work; the
loop waits for conditions through :mod:`controller.coordinator.waiting`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import math
import threading
import time
from collections.abc import Callable, Collection, Coroutine, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from beaver.coordinator import Coordinator
from beaver.ids import IdSpace
from beaver.protocols import protocol as protocol_named
from beaver.records import Command, GatewayTiming, NotifyNode, UpdateGateway
from controller.coordinator.agents import REJECTION_REASONS, AgentLinks
from controller.coordinator.gateway_phase import GatewayUpdater, UpdatePipeline
from controller.coordinator.persistence import SnapshotWriter
from controller.coordinator.store import Store
from controller.coordinator.tau import TauMin, chains_counted, shortest_chain
from controller.coordinator.waiting import Changes, ComponentFailed
from stats import start_rate
from topologies import management
from topologies.secret import RunSecret

__all__ = ["REJECTION_REASONS", "GatewayUpdater", "SnapshotService", "TakeResult"]

log = logging.getLogger("beaver.snapshots")

PACKET_LIFETIME = 0.2
"""Seconds a stamped datagram may stay in the emulated network and the agents' socket
buffers (the coordinator's wire-id assumption, :mod:`beaver.wire_floor`): userspace
switches and busy agents hold datagrams for milliseconds, not for a fifth of a second."""

SHUTDOWN_WAIT = 2.0
"""Seconds the service's close waits for its loop's remaining tasks to end once cancelled."""

_T = TypeVar("_T")


async def _finish_other_tasks() -> None:
    """Cancel the loop's other tasks (a connection that never said hello, for one) and wait
    for them, so that each closes what it holds while the loop still runs."""
    others = asyncio.all_tasks() - {asyncio.current_task()}
    for task in others:
        task.cancel()
    if others:
        await asyncio.wait(others, timeout=SHUTDOWN_WAIT)


@dataclass(frozen=True)
class TakeResult:
    """What :meth:`SnapshotService.take` did."""

    started: int
    stored: int
    stalled: str | None
    """Why starting or finishing stopped early (a timeout, a component that died), or None."""
    rejections: dict[str, int]
    start_rate_hz: float | None = None
    """Snapshots started per second, first t0 to last (None: fewer than two)."""
    given_up: tuple[int, ...] = ()
    """Snapshots still open when the take stopped early, stored as they stood."""


class SnapshotService:
    """Coordinates snapshots of ``nodes`` under protocol ``protocol_name``."""

    def __init__(
        self,
        protocol_name: str,
        nodes: Iterable[str],
        store: Store,
        run: int,
        *,
        secret: RunSecret,
        gateways: GatewayUpdater | None = None,
        tau_min: float = math.inf,
        space: IdSpace | None = None,
        update_timeout: float = 1.0,
        update_window: int = 1,
        notify_spread: float = 0.0,
        seed: int = 0,
        listen: tuple[str, int] = ("127.0.0.1", 0),
    ):
        self.protocol = protocol_named(protocol_name)
        self.nodes = tuple(sorted(set(nodes)))
        self.store = store
        self.run = run
        self.core: Coordinator = self.protocol.coordinator(
            self.nodes,
            gateways=gateways.gateways() if gateways and self.protocol.uses_gateways else (),
            tau_min=tau_min, space=space, update_timeout=update_timeout,
            packet_lifetime=PACKET_LIFETIME,
        )
        if not 1 <= update_window <= self.core.space.lead:
            raise ValueError(f"update window must be in 1..{self.core.space.lead} (how far "
                             f"the core lets an id lead a gateway's), got {update_window}")
        self.updates = (UpdatePipeline(self.core, gateways, update_window, self._phase_done)
                        if gateways is not None else None)
        self.tau = TauMin(self.core, store, run)
        self.writer = SnapshotWriter(self.core, store, run, self.protocol.name)
        self._change = Changes()
        self.agents = AgentLinks(self.nodes, self.protocol.name, self._on_report, self._change.wake,
                                 secret=secret, notify_spread=notify_spread, seed=seed,
                                 notify_needed=self.core.needs_notify)
        self._listen = listen
        self.address: tuple[str, int] | None = None
        self.node_counters: dict[str, dict[str, Any]] = {}
        """Each agent's latest ``counters`` report (running totals)."""
        self.restored: dict[str, int] = {}
        """Per node, the snapshot id of the last ``restored`` acknowledgement."""
        self._open: dict[int, dict[str, GatewayTiming]] = {}
        """Started snapshots not stored yet, with their gateways' timings."""
        self._finished: set[int] = set()
        """Open snapshots that finished in this turn of the loop."""
        self._store_due = False
        """Whether storing the finished ones is scheduled for the end of this turn."""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="snapshots",
                                        daemon=True)
        self._progress: Callable[[int, int], None] | None = None
        self._taking: concurrent.futures.Future[TakeResult] | None = None

    @property
    def rejections(self) -> dict[str, int]:
        """Dropped agent reports, by reason."""
        return dict(self.agents.rejections)

    # -- life cycle (called from other threads) -------------------------------------------

    def start(self) -> tuple[str, int]:
        """Listen for agents; returns the (host, port) they should connect to."""
        self._thread.start()
        self.address = self._call(self._serve())
        return self.address

    def wait_agents(self, timeout: float) -> None:
        """Block until every node said hello; TimeoutError names the missing ones."""
        self._call(self._change.wait_for(lambda: not self.agents.missing(), timeout,
                                         lambda: "agents of " + ", ".join(self.missing_agents())
                                         + " did not connect"))

    def missing_agents(self) -> list[str]:
        return self.agents.missing()

    def take(
        self,
        count: int,
        rate: float,
        timeout: float,
        progress: Callable[[int, int], None] | None = None,
    ) -> TakeResult:
        """Start ``count`` snapshots at ``rate`` per second and wait until all are stored.

        Gives up after ``timeout`` seconds: what is still open is stored as it
        stands (incomplete, or invalid if its gateway phase never ended).
        ``progress(started, stored)`` is called from the service thread.
        """
        self._progress = progress
        self._taking = asyncio.run_coroutine_threadsafe(self._take(count, rate, timeout),
                                                        self._loop)
        return self._taking.result()

    def fail(self, what: str) -> None:
        """A component of the run died (call from any thread): the wait in progress, and
        every later one, ends with :class:`ComponentFailed`; a take stores its open
        snapshots as they stand and returns with ``stalled`` set to ``what``."""
        self._loop.call_soon_threadsafe(self._change.fail, what)

    def set_update_window(self, window: int) -> None:
        """Allow up to ``window`` gateway updates in flight from now on (between takes)."""
        async def assign() -> None:
            if self.updates is None:
                raise RuntimeError("this service updates no gateways")
            if self.updates.outstanding:
                raise RuntimeError("gateway updates are outstanding")
            if not 1 <= window <= self.core.space.lead:
                raise ValueError(f"update window must be in 1..{self.core.space.lead}, "
                                 f"got {window}")
            self.updates.window = window
        self._call(assign())

    def wait_chain_time(self, timeout: float, chains: int = 5) -> float:
        """The shortest external causal chain the agents measured (seconds).

        Waits until the agents' counters report at least ``chains`` chains in
        all (or some, once ``timeout`` is over); TimeoutError if none came.
        """
        return self._call(self._wait_chain_time(timeout, chains))

    def set_tau_min(self, tau_min: float, source: str) -> None:
        """Set the validity threshold (seconds) before the first snapshot; store it."""
        async def assign() -> None:
            self.tau.set(tau_min, source)
        self._call(assign())

    def follow_chains(self) -> None:
        """Let every shorter external chain the agents report lower a measured tau_min.

        The core then decides validity again: a snapshot accepted under the
        old bound that the lower one rejects becomes invalid, in the store
        too. Call it once the run's measured tau_min is stored.
        """
        async def follow() -> None:
            self.tau.following = True
            for counters in list(self.node_counters.values()):
                self.tau.follow(counters.get("chain_min"), self.writer.stored)
        self._call(follow())

    def restore(
        self,
        snapshot_id: int,
        states: Mapping[str, Any],
        in_flight: Mapping[str, list[dict[str, Any]]],
        timeout: float,
    ) -> None:
        """Send every agent its state and channel state; wait for every ``restored``."""
        async def restore() -> None:
            for node in self.nodes:
                self.agents.send(node, "restore", snapshot_id=snapshot_id, state=states[node],
                                 in_flight=in_flight.get(node, []))
            await self._change.wait_for(
                lambda: all(self.restored.get(node) == snapshot_id for node in self.nodes), timeout,
                lambda: "no restored acknowledgement from " + ", ".join(
                    node for node in self.nodes if self.restored.get(node) != snapshot_id),
            )
        self._call(restore())

    def close(self) -> None:
        """Stop taking snapshots (after Ctrl-C in ``take``), tell agents to stop, store
        the counters, stop listening."""
        if self._taking is not None:
            self._taking.cancel()
        if self._thread.is_alive():
            self._call(self._shutdown())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
        self._loop.close()

    def __enter__(self) -> SnapshotService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, coroutine: Coroutine[Any, Any, _T]) -> _T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    # -- the loop --------------------------------------------------------------------------

    async def _serve(self) -> tuple[str, int]:
        self._change.open()
        return await self.agents.serve(*self._listen)

    async def _shutdown(self) -> None:
        if self.updates is not None:
            self.updates.cancel()
        await self.agents.close()
        self.store.set_rejections(self.run, self.rejections)
        self.store.set_node_counters(self.run, self.node_counters)
        await _finish_other_tasks()

    async def _wait_chain_time(self, timeout: float, chains: int) -> float:
        try:
            await self._change.wait_for(lambda: chains_counted(self.node_counters) >= chains,
                                        timeout, lambda: "")
        except TimeoutError:
            pass
        shortest = shortest_chain(self.node_counters)
        if shortest is None:
            raise TimeoutError(
                f"no agent measured an external causal chain within {timeout:g} s "
                "(are the relays running and the bank sending through them?)")
        return shortest

    async def _take(self, count: int, rate: float, timeout: float) -> TakeResult:
        deadline = time.monotonic() + timeout
        first = self.core.newest + 1
        began = time.monotonic()
        stalled, given_up = None, ()
        try:
            for i in range(count):
                await self._change.wait_for(self._may_start, deadline - time.monotonic(),
                                            self._why_not_started, wake_at=self.core.next_start_at)
                pause = began + i / rate - time.monotonic()
                if pause > 0:
                    await asyncio.sleep(pause)
                self._start_one()
            await self._change.wait_for(
                lambda: not self._open, deadline - time.monotonic(),
                lambda: f"snapshots {sorted(self._open)} did not finish",
            )
        except (TimeoutError, ComponentFailed) as error:
            stalled = str(error)
            log.warning("giving up after %.1f s: %s", time.monotonic() - began, stalled)
            self.agents.cancel_notifies()
            given_up = tuple(sorted(self._open))
            if given_up:
                self._store(list(given_up))
        started = self.core.newest - first + 1
        stored = sum(1 for k in self.writer.stored if k >= first)
        return TakeResult(started, stored, stalled, self.rejections, self._start_rate(first),
                          given_up)

    def _may_start(self) -> bool:
        return (self.core.can_start(time.monotonic())
                and not (self.updates is not None and self.updates.full))

    def _why_not_started(self) -> str:
        if self.core.can_start(time.monotonic()) and self.updates is not None:
            return (f"the gateway updates of snapshots {list(self.updates.outstanding)} were "
                    f"not answered, so no more than {self.updates.window} could be outstanding")
        return f"the next snapshot waited for {self.core.start_holdup(time.monotonic())}"

    def _start_rate(self, first: int) -> float | None:
        return start_rate(self.core.status(k).t0 for k in range(first, self.core.newest + 1))

    def _start_one(self) -> None:
        t0 = time.monotonic()
        k, commands = self.core.start(t0)
        self._open[k] = {}
        if any(isinstance(command, UpdateGateway) for command in commands):
            assert self.updates is not None
            self.updates.send(k)
        else:
            self._carry_out(commands)
        self._report_progress()

    def _phase_done(self, k: int, commands: list[Command],
                    timings: dict[str, GatewayTiming]) -> None:
        """Snapshot k's gateway phase is over (it may have been stored already, given up)."""
        if k in self._open:
            self._open[k] = timings
        self._carry_out(commands)
        self._may_have_finished((k,))
        self._change.wake()

    def _carry_out(self, commands: list[Command]) -> None:
        for command in commands:
            if isinstance(command, NotifyNode):
                self.agents.notify(command.node, command.snapshot_id)

    # -- reports ---------------------------------------------------------------------------

    def _on_report(self, node: str, message: dict[str, Any]) -> None:
        """One checked report of ``node``'s agent; the core raises InvalidReport to refuse."""
        kind = message["type"]
        if kind == "counters":
            self.node_counters[node] = {
                name: value for name, value in message.items() if name not in ("type", "seq")}
            self.tau.follow(message.get("chain_min"), self.writer.stored)
        elif kind == "restored":
            self.restored[node] = message["snapshot_id"]
        elif kind == "local":
            local = management.local_snapshot(node, message)
            completed = self.core.add_local(local, time.monotonic())
            self.writer.taken(local)
            self._may_have_finished(completed)
        else:
            self._may_have_finished(
                self.core.add_in_flight(management.in_flight(node, message), time.monotonic()))
        self._change.wake()

    # -- storing ---------------------------------------------------------------------------

    def _may_have_finished(self, snapshot_ids: Collection[int]) -> None:
        """Snapshots that may have finished now (the core completed them, or their gateway
        phase ended; an unfinished one comes back when its other half does): the ones that
        did are stored once this turn of the loop is over, all that finished in it
        together, in one transaction."""
        finished = [k for k in snapshot_ids if k in self._open and self.core.status(k).finished]
        if not finished:
            return
        self._finished.update(finished)
        if not self._store_due:
            self._store_due = True
            self._loop.call_soon(self._store_finished)

    def _store_finished(self) -> None:
        self._store_due = False
        finished = sorted(k for k in self._finished if k in self._open)  # not given up since
        self._finished.clear()
        if finished:
            self._store(finished)
            self._report_progress()

    def _store(self, snapshots: list[int]) -> None:
        """Store snapshots that finished together, in one transaction."""
        self.writer.write([(k, self._open.pop(k)) for k in snapshots])
        self._change.wake()

    def _report_progress(self) -> None:
        if self._progress is not None:
            self._progress(self.core.newest, len(self.writer.stored))
