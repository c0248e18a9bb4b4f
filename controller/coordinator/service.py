"""The snapshot coordinator service: the protocol core's Coordinator on the management network.

It runs in the root namespace and only translates; every rule (ids,
validity, completeness, the window, assembly) is the core's
(:mod:`beaver.coordinator`):

* agents connect over TCP and speak :mod:`hosts.management`: ``hello`` names
  the node, then seq-numbered ``local`` / ``in_flight`` / ``counters``
  reports, which become ``add_local`` / ``add_in_flight`` calls;
* to start snapshot k (at a given rate, while ``can_start()``), it takes t0
  just before asking the gateway control (:class:`GatewayControl`, which
  updates every gateway in parallel) and feeds each gateway's ack time or
  failure to the core; the core's :class:`~beaver.records.NotifyNode`
  commands become ``notify`` messages to agents;
* each finished snapshot is written to the :class:`~controller.coordinator.store.Store`
  in one transaction, then the core forgets it;
* agents' ``counters`` carry the shortest external causal chain they saw
  (relayed credits): :meth:`SnapshotService.wait_chain_time` turns them into
  a measured tau_min, set on the core before the first snapshot;
* :meth:`SnapshotService.restore` sends each agent a state and its channel
  state and waits for every ``restored``.

A report that is malformed, forged (it names another node than the
connection's ``hello``, or snapshot ids never started), out of sequence
(``seq`` not one more than the previous) or refused by the core
(:class:`~beaver.coordinator.InvalidReport`) is dropped with one log
line and counted by reason (:data:`REJECTION_REASONS`); nothing stored
changes and the run goes on.

The service owns one thread running an asyncio loop; the public methods are
called from any other thread and block until the loop has done the work.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import math
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection, Coroutine, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from beaver.coordinator import Coordinator, InvalidReport
from beaver.ids import IdSpace
from beaver.protocols import protocol as protocol_named
from beaver.records import Command, NotifyNode, UpdateGateway
from controller.coordinator import store as stored
from controller.coordinator.store import (
    FinishedSnapshot,
    Store,
    StoredInFlight,
    StoredLocal,
)
from hosts import management
from hosts.management import MalformedMessage

log = logging.getLogger("beaver.snapshots")

REJECTION_REASONS = ("malformed", "forged", "sequence", "invalid")
"""Why a report was dropped: bad JSON or fields; another node or ids never started;
``seq`` not one more than the previous; refused by the protocol core."""

TAU_FOLLOWED = "measured (shortest relayed chain seen during the run)"
"""The tau_min source once a chain reported during the run lowered the measured bound."""

_T = TypeVar("_T")


class GatewayTiming(Protocol):
    """One gateway's part of an update (``time.monotonic()`` seconds; None if unknown)."""

    @property
    def sent_at(self) -> float | None: ...

    @property
    def acked_at(self) -> float | None: ...


class GatewayUpdate(Protocol):
    """What one ``set_id(k)`` did (:class:`controller.gateways.client.IdUpdateResult`)."""

    @property
    def gateways(self) -> Mapping[str, GatewayTiming]: ...

    @property
    def failed(self) -> Collection[str]: ...


class GatewayControl(Protocol):
    """The gateway side: :class:`controller.gateways.client.GatewayClient`, or a fake in tests."""

    def gateways(self) -> list[str]: ...

    def set_id(self, snapshot_id: int) -> GatewayUpdate: ...


@dataclass(frozen=True)
class TakeResult:
    """What :meth:`SnapshotService.take` did."""

    started: int
    stored: int
    stalled: str | None
    """Why starting or finishing stopped early (a timeout), or None."""
    rejections: dict[str, int]


@dataclass
class _Agent:
    node: str
    writer: asyncio.StreamWriter
    last_seq: int = 0


@dataclass
class _Snapshot:
    """The service's own notes on a started snapshot (the core keeps the rest)."""

    timings: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)
    failed: set[str] = field(default_factory=set)


class SnapshotService:
    """Coordinates snapshots of ``nodes`` under protocol ``protocol_name``."""

    def __init__(
        self,
        protocol_name: str,
        nodes: Iterable[str],
        store: Store,
        run: int,
        *,
        gateways: GatewayControl | None = None,
        tau_min: float = math.inf,
        space: IdSpace | None = None,
        update_timeout: float = 1.0,
        notify_spread: float = 0.0,
        seed: int = 0,
        listen: tuple[str, int] = ("127.0.0.1", 0),
    ):
        self.protocol = protocol_named(protocol_name)
        self.nodes = tuple(sorted(set(nodes)))
        self.store = store
        self.run = run
        self._gateways = gateways
        self.core: Coordinator = self.protocol.coordinator(
            self.nodes,
            gateways=gateways.gateways() if gateways and self.protocol.uses_gateways else (),
            tau_min=tau_min, space=space, update_timeout=update_timeout,
        )
        self.notify_spread = notify_spread
        """Seconds over which one snapshot's ``notify`` messages reach the nodes."""
        self._notify_delays = random.Random(seed)
        self._pending_notifies: set[asyncio.TimerHandle] = set()
        self._follow_chains = False
        self._listen = listen
        self.address: tuple[str, int] | None = None
        self.rejections: Counter[str] = Counter()
        self.node_counters: dict[str, dict[str, Any]] = {}
        """Each agent's latest ``counters`` report (running totals)."""
        self.restored: dict[str, int] = {}
        """Per node, the snapshot id of the last ``restored`` acknowledgement."""
        self._agents: dict[str, _Agent] = {}
        self._open: dict[int, _Snapshot] = {}
        """Started snapshots not stored yet."""
        self._stored: set[int] = set()
        self._forgotten_through = 0
        self._taken_at: dict[str, list[tuple[int, int, float]]] = {n: [] for n in self.nodes}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="snapshots",
                                        daemon=True)
        self._server: asyncio.Server | None = None
        self._changed: asyncio.Event | None = None
        self._progress: Callable[[int, int], None] | None = None
        self._taking: concurrent.futures.Future[TakeResult] | None = None

    # -- life cycle (called from other threads) -------------------------------------------

    def start(self) -> tuple[str, int]:
        """Listen for agents; returns the (host, port) they should connect to."""
        self._thread.start()
        self.address = self._call(self._serve())
        return self.address

    def wait_agents(self, timeout: float) -> None:
        """Block until every node said hello; TimeoutError names the missing ones."""
        self._call(self._wait_for(lambda: len(self._agents) == len(self.nodes), timeout,
                                  lambda: "agents of " + ", ".join(self.missing_agents())
                                  + " did not connect"))

    def missing_agents(self) -> list[str]:
        return [node for node in self.nodes if node not in self._agents]

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

    def wait_chain_time(self, timeout: float, chains: int = 5) -> float:
        """The shortest external causal chain the agents measured (seconds).

        Waits until the agents' counters report at least ``chains`` chains in
        all (or some, once ``timeout`` is over); TimeoutError if none came.
        """
        return self._call(self._wait_chain_time(timeout, chains))

    def set_tau_min(self, tau_min: float) -> None:
        """Set the validity threshold before the first snapshot starts."""
        async def assign() -> None:
            if self.core.newest:
                raise RuntimeError("tau_min must be set before the first snapshot")
            self.core.tau_min = tau_min
        self._call(assign())

    def follow_chains(self) -> None:
        """Let every shorter external chain the agents report lower a measured tau_min.

        The core then decides validity again: a snapshot accepted under the
        old bound that the lower one rejects becomes invalid, in the store
        too. Call it once the run's measured tau_min is stored.
        """
        async def follow() -> None:
            self._follow_chains = True
            for counters in list(self.node_counters.values()):
                self._follow_chain(counters.get("chain_min"))
        self._call(follow())

    def restore(
        self,
        snapshot_id: int,
        states: Mapping[str, Any],
        in_flight: Mapping[str, list[dict[str, Any]]],
        timeout: float,
    ) -> None:
        """Send every agent its state and channel state; wait for every ``restored``."""
        self._call(self._restore(snapshot_id, states, in_flight, timeout))

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
        self._changed = asyncio.Event()
        self._server = await asyncio.start_server(
            self._agent_connection, *self._listen, limit=management.MAX_LINE + 1
        )
        host, port = self._server.sockets[0].getsockname()[:2]
        return host, port

    async def _shutdown(self) -> None:
        for handle in self._pending_notifies:
            handle.cancel()
        self._pending_notifies.clear()
        if self._server is not None:
            self._server.close()
        for agent in list(self._agents.values()):
            try:
                agent.writer.write(management.encode("stop"))
                await agent.writer.drain()
            except ConnectionError:
                pass
            agent.writer.close()
        self._agents.clear()
        self.store.set_rejections(self.run, dict(self.rejections))
        self.store.set_node_counters(self.run, self.node_counters)

    async def _wait_for(
        self, condition: Callable[[], bool], timeout: float, explain: Callable[[], str]
    ) -> None:
        assert self._changed is not None
        deadline = time.monotonic() + timeout
        while not condition():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(explain())
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                continue

    def _follow_chain(self, chain: object) -> None:
        """A reported shortest chain below tau_min lowers it (see :meth:`set_tau_min`)."""
        if not isinstance(chain, int | float) or isinstance(chain, bool):
            return
        if not 0 < chain < self.core.tau_min:
            return
        revoked = self.core.lower_tau_min(float(chain))
        log.warning("an external chain of %.0f us lowers tau_min; %d accepted snapshots "
                    "become invalid", chain * 1e6, len(revoked))
        self.store.set_tau_min(self.run, chain * 1e6, TAU_FOLLOWED)
        self.store.revoke_validity(self.run, [k for k in revoked if k in self._stored])

    def _wake(self) -> None:
        assert self._changed is not None
        self._changed.set()

    async def _wait_chain_time(self, timeout: float, chains: int) -> float:
        def measured() -> list[float]:
            return [c["chain_min"] for c in self.node_counters.values()
                    if isinstance(c.get("chain_min"), int | float)]

        def counted() -> int:
            return sum(c.get("chain_count") or 0 for c in self.node_counters.values())

        try:
            await self._wait_for(lambda: counted() >= chains, timeout, lambda: "")
        except TimeoutError:
            if not measured():
                raise TimeoutError(
                    f"no agent measured an external causal chain within {timeout:g} s "
                    "(are the relays running and the bank sending through them?)") from None
        return float(min(measured()))

    async def _restore(
        self,
        snapshot_id: int,
        states: Mapping[str, Any],
        in_flight: Mapping[str, list[dict[str, Any]]],
        timeout: float,
    ) -> None:
        for node in self.nodes:
            self._agents[node].writer.write(management.encode(
                "restore", snapshot_id=snapshot_id, state=states[node],
                in_flight=in_flight.get(node, []),
            ))
        await self._wait_for(
            lambda: all(self.restored.get(node) == snapshot_id for node in self.nodes), timeout,
            lambda: "no restored acknowledgement from " + ", ".join(
                node for node in self.nodes if self.restored.get(node) != snapshot_id),
        )

    async def _take(self, count: int, rate: float, timeout: float) -> TakeResult:
        deadline = time.monotonic() + timeout
        first = self.core.newest + 1
        began = time.monotonic()
        stalled = None
        try:
            for i in range(count):
                await self._wait_for(
                    self.core.can_start, deadline - time.monotonic(),
                    lambda: f"snapshot {self.core.oldest_unfinished} did not finish, "
                            f"so no more than {self.core.window} could be in flight",
                )
                pause = began + i / rate - time.monotonic()
                if pause > 0:
                    await asyncio.sleep(pause)
                await self._start_one()
            await self._wait_for(
                lambda: not self._open, deadline - time.monotonic(),
                lambda: f"snapshots {sorted(self._open)} did not finish",
            )
        except TimeoutError as error:
            stalled = str(error)
            log.warning("giving up after %.1f s: %s", timeout, stalled)
            for k in sorted(self._open):
                self._store(k)
        started = self.core.newest - first + 1
        stored = sum(1 for k in self._stored if k >= first)
        return TakeResult(started, stored, stalled, dict(self.rejections))

    async def _start_one(self) -> None:
        t0 = time.monotonic()
        k, commands = self.core.start(t0)
        self._open[k] = _Snapshot()
        await self._carry_out(k, commands)
        self._report_progress()

    async def _carry_out(self, k: int, commands: list[Command]) -> None:
        """Send notifies; an UpdateGateway list becomes one parallel ``set_id(k)``."""
        if any(isinstance(command, UpdateGateway) for command in commands):
            commands = await self._update_gateways(k)
        for command in commands:
            if isinstance(command, NotifyNode):
                self._notify(command)
        self._collect_finished()

    async def _update_gateways(self, k: int) -> list[Command]:
        assert self._gateways is not None
        notes = self._open[k]
        try:
            update = await asyncio.to_thread(self._gateways.set_id, k)
            timings, failed = dict(update.gateways), set(update.failed)
        except Exception as error:  # the gateway app is down or broke: every update failed
            log.warning("snapshot %d: gateway update failed: %s", k, error)
            timings, failed = {}, set(self.core.gateways)
        commands: list[Command] = []
        acked = sorted(
            ((timing.acked_at, gateway) for gateway, timing in timings.items()
             if gateway not in failed and timing.acked_at is not None),
        )
        for acked_at, gateway in acked:
            notes.timings[gateway] = (timings[gateway].sent_at, acked_at)
            commands += self.core.gateway_acked(gateway, k, acked_at)
        now = time.monotonic()
        for gateway in sorted(set(self.core.gateways) - {gateway for _, gateway in acked}):
            notes.failed.add(gateway)
            timing = timings.get(gateway)
            notes.timings[gateway] = (timing.sent_at if timing else None, None)
            commands += self.core.gateway_failed(gateway, k, now)
        return commands

    def _notify(self, command: NotifyNode) -> None:
        """Tell a node about a snapshot, at a random point of the notify spread.

        A coordinator that reaches many VMs does not reach them all at once;
        the spread models that skew. Beaver does not depend on it (stamped
        traffic makes nodes snapshot first); a protocol that learns of
        snapshots only from notifications does.
        """
        delay = self._notify_delays.uniform(0, self.notify_spread) if self.notify_spread else 0
        if not delay:
            self._send_notify(command)
            return

        def send_later() -> None:
            self._pending_notifies.discard(handle)
            self._send_notify(command)

        handle = self._loop.call_later(delay, send_later)
        self._pending_notifies.add(handle)

    def _send_notify(self, command: NotifyNode) -> None:
        agent = self._agents.get(command.node)
        if agent is None or agent.writer.is_closing():
            log.warning("snapshot %d: no agent of %s to notify", command.snapshot_id,
                        command.node)
            return
        agent.writer.write(management.encode("notify", snapshot_id=command.snapshot_id))

    # -- agents ----------------------------------------------------------------------------

    async def _agent_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        peer = writer.get_extra_info("peername")
        agent = None
        try:
            agent = self._hello(await reader.readline(), writer, peer)
            if agent is None:
                return
            while line := await reader.readline():
                self._on_report(agent, line)
        except (ConnectionError, asyncio.LimitOverrunError, ValueError) as error:
            self._reject("malformed", agent.node if agent else str(peer), str(error))
        finally:
            if agent is not None and self._agents.get(agent.node) is agent:
                del self._agents[agent.node]
                log.info("agent of %s disconnected", agent.node)
            writer.close()

    def _hello(
        self, line: bytes, writer: asyncio.StreamWriter, peer: object
    ) -> _Agent | None:
        try:
            message = management.decode(line)
        except MalformedMessage as error:
            self._reject("malformed", str(peer), f"first message: {error}")
            return None
        if message["type"] != "hello":
            self._reject("malformed", str(peer), f"first message is {message['type']}, not hello")
            return None
        node = message["node"]
        if node not in self.nodes or node in self._agents:
            what = "not in the in-group" if node not in self.nodes else "already connected"
            self._reject("forged", str(peer), f"hello from {node!r}: {what}")
            return None
        if message["protocol"] != self.protocol.name:
            self._reject("malformed", node, f"agent runs {message['protocol']!r}, "
                                            f"the coordinator {self.protocol.name!r}")
            return None
        agent = self._agents[node] = _Agent(node, writer)
        log.info("agent of %s connected from %s", node, peer)
        self._wake()
        return agent

    def _on_report(self, agent: _Agent, line: bytes) -> None:
        try:
            message = management.decode(line)
        except MalformedMessage as error:
            self._reject("malformed", agent.node, str(error))
            return
        kind = message["type"]
        if kind not in ("local", "in_flight", "counters", "restored"):
            self._reject("malformed", agent.node, f"agents do not send {kind}")
            return
        if message.get("node", agent.node) != agent.node:
            self._reject("forged", agent.node, f"{kind} report for {message['node']!r}")
            return
        if kind in ("local", "in_flight") and not 1 <= message["first_id"] <= message["last_id"] \
                <= self.core.newest:
            self._reject("forged", agent.node, f"{kind} report for snapshots "
                         f"{message['first_id']}..{message['last_id']}, started: "
                         f"1..{self.core.newest}")
            return
        seq = message["seq"]
        if seq != agent.last_seq + 1:
            self._reject("sequence", agent.node, f"{kind} report seq {seq} after {agent.last_seq}")
            agent.last_seq = max(agent.last_seq, seq)
            return
        agent.last_seq = seq
        if kind == "counters":
            self.node_counters[agent.node] = {
                name: value for name, value in message.items() if name not in ("type", "seq")}
            if self._follow_chains:
                self._follow_chain(message.get("chain_min"))
            self._wake()
            return
        if kind == "restored":
            self.restored[agent.node] = message["snapshot_id"]
            self._wake()
            return
        now = time.monotonic()
        try:
            if kind == "local":
                local = management.local_snapshot(agent.node, message)
                self.core.add_local(local, now)
                self._taken_at[agent.node].append((local.first_id, local.last_id,
                                                   local.taken_at))
            else:
                self.core.add_in_flight(management.in_flight(agent.node, message), now)
        except InvalidReport as error:
            self._reject("invalid", agent.node, str(error))
            return
        self._collect_finished()

    def _reject(self, reason: str, source: str, detail: str) -> None:
        self.rejections[reason] += 1
        log.warning("rejected report (%s) from %s: %s", reason, source, detail)

    # -- storing ---------------------------------------------------------------------------

    def _collect_finished(self) -> None:
        finished = [k for k in sorted(self._open) if self.core.status(k).finished]
        for k in finished:
            self._store(k)
        if finished:
            self._report_progress()

    def _store(self, k: int) -> None:
        """Write snapshot k as the core sees it, then let the core forget what it can."""
        notes = self._open.pop(k)
        snapshot = self.core.assemble(k)
        status = snapshot.status
        states = tuple(
            StoredLocal(node, self._local_time(node, k), state)
            for node, state in sorted(snapshot.states.items())
        )
        in_flight = tuple(
            StoredInFlight(m.receiver, m.sender, m.received_at, m.message)
            for m in snapshot.in_flight
        )
        gateways = tuple(
            stored.GatewayTiming(gateway, sent_at, acked_at, gateway in notes.failed)
            for gateway, (sent_at, acked_at) in sorted(notes.timings.items())
        )
        self.store.add_snapshot(self.run, self.protocol.name, FinishedSnapshot(
            snapshot_id=k, t0=status.t0, t1=status.t1, valid=bool(status.valid),
            complete=status.complete, completed_at=status.completed_at,
            states=states, in_flight=in_flight, gateways=gateways,
        ))
        self._stored.add(k)
        through = self._forgotten_through
        while through + 1 in self._stored:
            through += 1
        if through > self._forgotten_through:
            self._forgotten_through = through
            self.core.forget(through)
            for node, times in self._taken_at.items():
                self._taken_at[node] = [t for t in times if t[1] > through]
        self._wake()

    def _local_time(self, node: str, k: int) -> float:
        return next(taken_at for first, last, taken_at in reversed(self._taken_at[node])
                    if first <= k <= last)

    def _report_progress(self) -> None:
        if self._progress is not None:
            self._progress(self.core.newest, len(self._stored))
