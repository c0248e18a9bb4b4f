"""The agents' side of the coordinator: their TCP connections and the intake of their reports.

Agents speak :mod:`topologies.management`. A connection's first message must be
``hello`` naming an in-group node not connected yet, under the
coordinator's protocol; every later message is a report about that node,
numbered by ``seq``. :class:`AgentLinks` checks only what the connection
itself can tell (the JSON, the message type, the node a report names, the
sequence) and hands every other report to the coordinator's handler; the
protocol core decides whether the report itself is acceptable
(:class:`~beaver.refusals.InvalidReport`, or
:class:`~beaver.refusals.ForgedReport` for one no honest node can send).

Every agent message must carry the HMAC of the run's secret
(:mod:`topologies.secret`); ``hello`` a nonce never seen in this run, every
report that nonce as its ``session``. Anything else is dropped as
``forged``: without the secret nobody, on the management network or on the
machine, can say hello as a node or report for one, and a recorded hello or
report cannot be replayed on another connection.

A dropped report is counted by reason (:data:`REJECTION_REASONS`) with one
log line; nothing else changes. A forged report does not use up the
connection's ``seq``: it did not come from the agent's own numbering.

Everything here runs on the coordinator's event loop.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from beaver.refusals import ForgedReport, InvalidReport
from controller.coordinator.notify_queue import NotifyQueue
from topologies import management
from topologies.management import MalformedMessage
from topologies.secret import MAC_FIELD, RunSecret

log = logging.getLogger("beaver.snapshots")

REJECTION_REASONS = ("malformed", "forged", "sequence", "invalid")
"""Why a report was dropped: bad JSON or fields; another node or ids never started;
``seq`` not one more than the previous; refused by the protocol core."""

REPORTS = ("local", "in_flight", "counters", "restored")
"""The message types an agent sends after ``hello``."""

ReportHandler = Callable[[str, dict[str, Any]], None]
"""Takes (node, checked report); raises InvalidReport to refuse it."""


@dataclass
class _Agent:
    node: str
    writer: asyncio.StreamWriter
    session: str
    last_seq: int = 0
    notified: int = 0
    """The newest snapshot id a ``notify`` on this connection named."""


class AgentLinks:
    """The connected agents of ``nodes``, speaking ``protocol_name``."""

    def __init__(self, nodes: Collection[str], protocol_name: str, on_report: ReportHandler,
                 on_change: Callable[[], None], *, secret: RunSecret,
                 notify_spread: float = 0.0, seed: int = 0,
                 notify_needed: Callable[[str, int], bool] = lambda node, snapshot_id: True):
        self.nodes = nodes
        self.secret = secret
        self._nonces: set[str] = set()
        """Every hello nonce accepted in this run (a replayed hello is refused)."""
        self.protocol_name = protocol_name
        self.rejections: Counter[str] = Counter()
        self.notify_spread = notify_spread
        """Seconds over which one snapshot's ``notify`` messages reach the nodes."""
        self.notify_needed = notify_needed
        """Asked just before a ``notify`` leaves: whether it can still change anything at
        the node (the core's :meth:`~beaver.coordinator.Coordinator.needs_notify`)."""
        self.notifies = Counter[str]()
        """``notify`` messages ``sent``, and ``skipped`` because they were no longer needed."""
        self._on_report = on_report
        self._on_change = on_change
        self._agents: dict[str, _Agent] = {}
        self._notify_delays = random.Random(seed)
        self._waiting_notifies: dict[str, NotifyQueue] = {}
        """Per node, the notifications waiting for their point of the spread."""
        self._due_notifies: dict[str, int] = {}
        """Per node, the newest id whose notification is due in this turn of the loop."""
        self._server: asyncio.Server | None = None

    async def serve(self, host: str, port: int) -> tuple[str, int]:
        """Listen for agents; returns the address they should connect to."""
        self._server = await asyncio.start_server(
            self._connection, host, port, limit=management.MAX_LINE + 1)
        bound_host, bound_port = self._server.sockets[0].getsockname()[:2]
        return bound_host, bound_port

    def missing(self) -> list[str]:
        return [node for node in self.nodes if node not in self._agents]

    def send(self, node: str, kind: str, **fields: Any) -> None:
        self._agents[node].writer.write(management.encode(kind, **fields))

    def notify(self, node: str, snapshot_id: int) -> None:
        """Tell a node about a snapshot, at a random point of the notify spread.

        A coordinator that reaches many VMs does not reach them all at once;
        the spread models that skew. Beaver does not depend on it (stamped
        traffic makes nodes snapshot first); a protocol that learns of
        snapshots only from notifications does. A notification the node no
        longer needs, now or when its time comes, is not sent: it reported the
        snapshot already, or its connection carried a notification of a newer
        id first (a node told about id k takes one local snapshot covering every
        id up to k, under every protocol of the core). The notifications due in
        one turn of the loop leave together, the newest id for each node only;
        one that a newer notification or the node's own report makes useless
        before its time is dropped then (:mod:`controller.coordinator.notify_queue`),
        so it costs the loop no wake-up.
        """
        if not self.notify_needed(node, snapshot_id):
            self.notifies["skipped"] += 1
            return
        delay = self._notify_delays.uniform(0, self.notify_spread) if self.notify_spread else 0
        if not delay:
            self._notify_due(node, snapshot_id)
            return
        waiting = self._waiting_notifies.get(node)
        if waiting is None:
            loop = asyncio.get_running_loop()
            waiting = self._waiting_notifies[node] = NotifyQueue(
                loop, lambda k: self._notify_due(node, k), self._count_skipped)
        waiting.add(snapshot_id, waiting.loop.time() + delay)

    def _count_skipped(self, count: int) -> None:
        self.notifies["skipped"] += count

    def _drop_useless_notifies(self, node: str) -> None:
        """Drop the node's notifications waiting for their time that can no longer change
        anything (after it reported, or a newer one was sent to it)."""
        waiting = self._waiting_notifies.get(node)
        if not waiting:
            return
        waiting.drop_through(lambda k: self._notify_useless(node, k))

    def _notify_useless(self, node: str, snapshot_id: int) -> bool:
        """Whether notifying ``node`` of ``snapshot_id`` can change nothing: it reported the
        snapshot, or its connection carried a notification of this id or a newer one."""
        agent = self._agents.get(node)
        return (not self.notify_needed(node, snapshot_id)
                or (agent is not None and agent.notified >= snapshot_id))

    def _notify_due(self, node: str, snapshot_id: int) -> None:
        """A notification's time came: it leaves at the end of this turn of the loop,
        unless one of a newer id for the same node does."""
        due = self._due_notifies
        if not due:
            asyncio.get_running_loop().call_soon(self._send_due_notifies)
        if due.get(node, 0) < snapshot_id:
            if node in due:
                self.notifies["skipped"] += 1
            due[node] = snapshot_id
        else:
            self.notifies["skipped"] += 1

    def _send_due_notifies(self) -> None:
        due, self._due_notifies = self._due_notifies, {}
        for node, snapshot_id in due.items():
            self._send_notify(node, snapshot_id)

    def _send_notify(self, node: str, snapshot_id: int) -> None:
        if self._notify_useless(node, snapshot_id):
            self.notifies["skipped"] += 1
            return
        agent = self._agents.get(node)
        if agent is None or agent.writer.is_closing():
            log.warning("snapshot %d: no agent of %s to notify", snapshot_id, node)
            return
        agent.writer.write(management.encode("notify", snapshot_id=snapshot_id))
        agent.notified = snapshot_id
        self.notifies["sent"] += 1
        self._drop_useless_notifies(node)

    def cancel_notifies(self) -> None:
        """Drop the notifies not sent yet (a take that gave up needs none of them)."""
        for waiting in self._waiting_notifies.values():
            waiting.cancel()
        self._due_notifies.clear()

    async def close(self) -> None:
        """Cancel pending notifies, stop listening, tell every agent to stop."""
        self.cancel_notifies()
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

    # -- intake -----------------------------------------------------------------------------

    async def _connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        peer = writer.get_extra_info("peername")
        agent = None
        try:
            agent = self._hello(await reader.readline(), writer, peer)
            if agent is None:
                return
            while line := await reader.readline():
                self._report(agent, line)
        except (ConnectionError, asyncio.LimitOverrunError, ValueError) as error:
            self._reject("malformed", agent.node if agent else str(peer), str(error))
        finally:
            if agent is not None and self._agents.get(agent.node) is agent:
                del self._agents[agent.node]
                log.info("agent of %s disconnected", agent.node)
            writer.close()

    def _hello(self, line: bytes, writer: asyncio.StreamWriter, peer: object) -> _Agent | None:
        sealed = self.secret.authentic_line(line)
        try:
            message = management.decode(line, sealed=sealed)
        except MalformedMessage as error:
            self._reject("malformed", str(peer), f"first message: {error}")
            return None
        if message["type"] != "hello":
            self._reject("malformed", str(peer), f"first message is {message['type']}, not hello")
            return None
        if not sealed:
            self._reject("forged", str(peer), f"hello as {message['node']!r}: {no_mac(message)}")
            return None
        if message["nonce"] in self._nonces:
            self._reject("forged", str(peer), f"hello as {message['node']!r} replayed")
            return None
        node = message["node"]
        if node not in self.nodes or node in self._agents:
            what = "not in the in-group" if node not in self.nodes else "already connected"
            self._reject("forged", str(peer), f"hello from {node!r}: {what}")
            return None
        if message["protocol"] != self.protocol_name:
            self._reject("malformed", node, f"agent runs {message['protocol']!r}, "
                                            f"the coordinator {self.protocol_name!r}")
            return None
        self._nonces.add(message["nonce"])
        agent = self._agents[node] = _Agent(node, writer, message["nonce"])
        log.info("agent of %s connected from %s", node, peer)
        self._on_change()
        return agent

    def _report(self, agent: _Agent, line: bytes) -> None:
        sealed = self.secret.authentic_line(line)
        try:
            message = management.decode(line, sealed=sealed)
        except MalformedMessage as error:
            self._reject("malformed", agent.node, str(error))
            return
        kind = message["type"]
        if kind not in REPORTS:
            self._reject("malformed", agent.node, f"agents do not send {kind}")
            return
        if not sealed:
            self._reject("forged", agent.node, f"{kind} report: {no_mac(message)}")
            return
        if message.get("session") != agent.session:
            self._reject("forged", agent.node, f"{kind} report of another connection")
            return
        seq = message["seq"]
        if seq != agent.last_seq + 1:
            self._reject("sequence", agent.node, f"{kind} report seq {seq} after {agent.last_seq}")
            agent.last_seq = max(agent.last_seq, seq)
            return
        agent.last_seq = seq  # an authenticated report took its number, whatever becomes of it
        if message.get("node", agent.node) != agent.node:
            self._reject("forged", agent.node, f"{kind} report for {message['node']!r}")
            return
        try:
            self._on_report(agent.node, message)
        except ForgedReport as error:
            self._reject("forged", agent.node, str(error))
        except InvalidReport as error:
            self._reject("invalid", agent.node, str(error))
        else:
            if kind == "local":
                self._drop_useless_notifies(agent.node)

    def _reject(self, reason: str, source: str, detail: str) -> None:
        self.rejections[reason] += 1
        log.warning("rejected report (%s) from %s: %s", reason, source, detail)


def no_mac(message: dict[str, Any]) -> str:
    """Why a message that is not sealed with the run's secret was refused."""
    return "wrong HMAC" if MAC_FIELD in message else "no HMAC"
