"""The in-group snapshot runtime: sockets on one side, the protocol core on the other.

One single-threaded event loop (:class:`hosts.loop.StoppableLoop`) owns the
node's UDP data socket and its management connection, so a local snapshot (the service's
``capture``) always falls between two deliveries. For each datagram:

1. read it with its wire code (the snapshot id: the TOS byte, :mod:`hosts.wire`);
   a datagram that is not a JSON object with a ``kind`` within the size and
   nesting limits is logged, counted by reason (``malformed_by``) and ignored;
2. name the sender: the in-group node whose DIP is the source address, or
   None for the out-group (traffic that came in through a gateway). Under a
   protocol without gateways (``Protocol.uses_gateways``) out-group traffic
   carries no snapshot id, whatever the network wrote in its TOS byte, so the core
   sees it unmarked. Datagrams from in-group peers travel on a reliable
   channel (:mod:`hosts.delivery`): acknowledged, de-duplicated and
   delivered in order, each once, with the wire code it was first sent with;
   the steps below run for each datagram as its channel delivers it;
3. ask the core: ``node.receive(wire, sender, now, message)`` (a marker goes
   to ``node.receive_marker``). The core may take local snapshots, through
   ``capture``, before the datagram is delivered;
4. carry out the receipt: report local snapshots and in-flight records to the
   coordinator, send Chandy-Lamport markers to the peers' DIPs, count and log a
   rejected datagram, and hand the datagram to the service only if the core
   says deliver.

Every datagram the service sends is stamped with ``node.send(peer, now)`` in
its TOS byte and TTL (:mod:`hosts.wire`); one to an in-group peer takes the
channel's next ``seq`` and is sent again until acknowledged
(``retransmissions`` counts those), each time with TTL entropy drawn from
:data:`beaver.ids.TTL_ENTROPY`, what the fabric's loss rules drop by
(``beaver run --data-loss``). Peers come up at
different times, so a runtime starts by sending each peer a ``join``
datagram and answers a peer's first ``join`` with its own (any datagram from
a peer shows it is up); the service sends to a peer
only once it is known to be up (joins are the runtime's, like markers: the
core never sees them).

With a ground-truth log (:class:`hosts.truth.TruthLog`) the runtime gives
every datagram of the service a message id and logs its send, logs the
receive of every delivered datagram that carries an id (after the snapshots
the core captured on its arrival, before the service sees it) and logs each
capture where it happened: whenever a call into the core (``receive``,
``receive_marker``, ``notify``) raised the node's current id, the hook ran
inside that call for the ids it passed. From the
coordinator the runtime takes ``notify`` (to the core), ``restore`` (to the
service) and ``stop``. It decides nothing about snapshots itself. Time is
``time.monotonic()``.
"""

from __future__ import annotations

import logging
import math
import random
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict
from typing import Any

from beaver.ids import TTL_ENTROPY, UNMARKED
from beaver.protocols import SnapshotNode
from beaver.records import Marker, Receipt
from hosts import delivery, wire
from hosts.delivery import Channel
from hosts.link import ManagementLink
from hosts.loop import StoppableLoop
from hosts.runtime_counters import BAD_ACK, NO_SEQ, SEQ_WINDOW, Counters
from hosts.services import Address, Send, Service
from hosts.truth import MESSAGE_ID, TruthLog, message_id_of

log = logging.getLogger(__name__)

BATCH = 64
"""Datagrams read per wake-up before the management connection gets a turn."""


class Runtime(StoppableLoop):
    """Runs one in-group node: its data socket, its service and its protocol node."""

    def __init__(
        self,
        node: SnapshotNode,
        service: Service,
        data: socket.socket,
        peers: Mapping[str, Address],
        link: ManagementLink,
        *,
        gateways_stamp: bool = True,
        report_interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        truth: TruthLog | None = None,
    ):
        super().__init__()
        self.node = node
        self.service = service
        self.data = data
        self.peers = dict(peers)
        """Every in-group node's data address (DIP, port), this node's own included."""
        self._node_at = {address[0]: name for name, address in self.peers.items()}
        self.link = link
        self.gateways_stamp = gateways_stamp
        """Whether the protocol has gateways stamp out-group traffic; if not, its code is
        whatever the network left there and the core is told it is unmarked."""
        self.report_interval = report_interval
        self.clock = clock
        self.truth = truth
        """Where ground-truth events go (:mod:`hosts.truth`), or None."""
        self.counters = Counters()
        self.reachable: frozenset[str] = frozenset()
        """The peers known to be up: they sent a ``join`` (or anything else)."""
        self.channels: dict[str, Channel[tuple[dict[str, Any], int]]] = {
            peer: Channel() for peer in self.peers if peer != node.name}
        """Per in-group peer, the reliable channel; it holds (message, wire code) pairs."""
        self._entropies = random.Random()
        self._announced = False
        self._next_report = clock() + report_interval
        self.watch(data, self._on_data)
        self.watch(link.sock, self._on_management)

    # -- the loop -------------------------------------------------------------------------

    def run(self) -> None:
        """Serve until ``stop``, :meth:`request_stop` or the coordinator hangs up."""
        if not self._announced:
            self.announce()
        while not self.stopped:
            self.step(self._timeout())
        self.report_counters()
        self.link.flush()

    def step(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for traffic, handle it, then run due work."""
        self.wait(timeout)
        now = self.clock()
        if not self.stopped:
            self._send_all(self.service.work(now, self.reachable), now)
            self._retransmit(now)
        if now >= self._next_report:
            self.report_counters()
            self._next_report = now + self.report_interval
        self.link.flush()
        if self.link.broken:
            self.stopped = True

    def announce(self) -> None:
        """Tell every peer that this node is up."""
        self._announced = True
        for peer, address in sorted(self.peers.items()):
            if peer != self.node.name:
                self._transmit({"kind": wire.JOIN}, address, UNMARKED, self.clock())

    def _timeout(self) -> float:
        work = self.service.next_work()
        retries = [due for channel in self.channels.values()
                   if (due := channel.next_due()) is not None]
        due = min(self._next_report, math.inf if work is None else work, *retries)
        return max(0.0, due - self.clock())

    def _retransmit(self, now: float) -> None:
        for peer, channel in self.channels.items():
            for payload, code in channel.due(now):
                self._send_payload(payload, self.peers[peer], code, self._entropy())
                self.counters.retransmissions += 1

    def _entropy(self) -> int:
        return self._entropies.choice(TTL_ENTROPY)

    # -- data channel ---------------------------------------------------------------------

    def _on_data(self) -> None:
        for _ in range(BATCH):
            received = wire.receive(self.data)
            if received is None:
                return
            self.handle_datagram(*received, self.clock())

    def handle_datagram(self, payload: bytes, code: int, source: Address, now: float) -> None:
        try:
            message = wire.decode(payload)
        except wire.MalformedDatagram as error:
            self._malformed(error, source)
            return
        sender = self._node_at.get(source[0])
        if sender is None or sender == self.node.name:
            self._deliver(message, code, sender, source, now)
            return
        if sender not in self.reachable:
            self.reachable |= {sender}
            log.info("peer %s is up", sender)
        kind, channel = message["kind"], self.channels[sender]
        if kind == wire.JOIN:
            if not message.get("answer"):
                self._transmit({"kind": wire.JOIN, "answer": True}, self.peers[sender],
                               UNMARKED, now)
            return
        if kind == delivery.ACK:
            acked = delivery.ack_fields(message)
            if acked is None:
                self._malformed(wire.MalformedDatagram(BAD_ACK, "no valid through, held"),
                                source)
                return
            channel.acknowledged(*acked)
            return
        seq = delivery.seq_of(message)
        if seq is None:
            self._malformed(wire.MalformedDatagram(NO_SEQ, "in-group datagram without seq"),
                            source)
            return
        try:
            ready = channel.receive(seq, (message, code))
        except delivery.OutOfWindow as error:
            self._malformed(wire.MalformedDatagram(SEQ_WINDOW, str(error)), source)
            return
        self._transmit(channel.ack(), self.peers[sender], UNMARKED, now, self._entropy())
        if ready is None:
            self.counters.duplicates += 1
            return
        for held, held_code in ready:
            self._deliver(held, held_code, sender, source, now)
            if self.stopped:
                return

    def _malformed(self, error: wire.MalformedDatagram, source: Address) -> None:
        self.counters.malformed += 1
        wire.note_malformed(self.counters.malformed_by, error, source, log)

    def _deliver(
        self, message: dict[str, Any], code: int, sender: str | None, source: Address,
        now: float,
    ) -> None:
        """Hand one datagram (in order, once) to the core and, if it says so, the service."""
        if message["kind"] == wire.MARKER:
            self._on_marker(message, sender, source, now)
            return
        if sender is None and not self.gateways_stamp:
            code = UNMARKED
        before = self.node.current
        receipt = self.node.receive(code, sender, now, message)
        self._log_captures(before, now)
        message_id = message_id_of(message)
        if self.truth is not None and receipt.deliver and message_id is not None:
            self.truth.receive(message_id, now)
        self._carry_out(receipt, now)
        if receipt.rejected:
            self.counters.rejected += 1
            log.warning(
                "rejected datagram from %s (%s:%d) with wire id %d: node %s at id %d",
                sender or "out-group", *source, code, self.node.name, self.node.current,
            )
        if not receipt.deliver:
            return
        self.counters.delivered += 1
        started = message.get("chain_started")
        if sender is None and isinstance(started, int | float) and not isinstance(started, bool):
            chain = now - started
            self.counters.chain_count += 1
            if self.counters.chain_min is None or chain < self.counters.chain_min:
                self.counters.chain_min = chain
        self._send_all(self.service.deliver(message, sender, source, now), now)

    def _on_marker(
        self, message: dict[str, Any], sender: str | None, source: Address, now: float
    ) -> None:
        snapshot_id = message.get("snapshot_id")
        receive_marker = getattr(self.node, "receive_marker", None)
        if sender is None or receive_marker is None or type(snapshot_id) is not int:
            self.counters.malformed += 1
            log.warning(
                "ignored marker from %s:%d: not from an in-group peer of a marker protocol "
                "with an integer snapshot_id", *source,
            )
            return
        before = self.node.current
        receipt = receive_marker(Marker(snapshot_id), sender, now)
        self._log_captures(before, now)
        self._carry_out(receipt, now)

    def _log_captures(self, before: int, now: float) -> None:
        """Log the snapshots the last core call captured (its id rose from ``before``)."""
        if self.truth is not None and self.node.current > before:
            self.truth.capture(before + 1, self.node.current, now)

    def _carry_out(self, receipt: Receipt, now: float) -> None:
        for local in receipt.snapshots:
            self.link.send_local(local)
        for record in receipt.in_flight:
            self.link.send_in_flight(record)
        for peer, marker in receipt.outgoing:
            marker_message = {"kind": wire.MARKER, "snapshot_id": marker.snapshot_id}
            self._transmit_to_peer(marker_message, peer, UNMARKED, now)
            self.counters.markers_sent += 1

    def _send_all(self, sends: list[Send], now: float) -> None:
        for send in sends:
            if isinstance(send.to, str):
                peer: str | None = send.to
                address = self.peers[send.to]
            else:
                peer, address = None, send.to
            stamp, message = self.node.send(peer, now), send.message
            if self.truth is not None:
                message = {**message, MESSAGE_ID: self.truth.new_message_id()}
                self.truth.send(message[MESSAGE_ID], now)
            if peer is None:
                self._transmit(message, address, stamp, now)
            else:
                self._transmit_to_peer(message, peer, stamp, now)
            self.counters.sent += 1

    def _transmit_to_peer(self, message: dict[str, Any], peer: str, code: int,
                          now: float) -> None:
        """Send on the reliable channel to ``peer``: sequenced, kept until acknowledged."""
        channel = self.channels[peer]
        seq = channel.next_seq()
        payload = self._transmit({**message, delivery.SEQ: seq}, self.peers[peer], code, now,
                                 self._entropy())
        channel.keep(seq, payload, code, now)

    def _transmit(self, message: dict[str, Any], address: Address, code: int, now: float,
                  entropy: int = 0) -> bytes:
        payload = wire.encode({**message, "sent_at": now})
        self._send_payload(payload, address, code, entropy)
        return payload

    def _send_payload(self, payload: bytes, address: Address, code: int,
                      entropy: int) -> None:
        try:
            wire.send(self.data, payload, address, code, entropy)
        except OSError as error:
            log.warning("could not send to %s:%d: %s", *address, error)

    # -- management -----------------------------------------------------------------------

    def _on_management(self) -> None:
        messages = self.link.receive()
        if messages is None:
            log.info("the coordinator closed the management connection; stopping")
            self.stopped = True
            return
        for message in messages:
            self.handle_command(message, self.clock())

    def handle_command(self, message: dict[str, Any], now: float) -> None:
        kind = message["type"]
        if kind == "notify":
            before = self.node.current
            receipt = self.node.notify(message["snapshot_id"], now)
            self._log_captures(before, now)
            self._carry_out(receipt, now)
        elif kind == "restore":
            self._restore(message, now)
        elif kind == "stop":
            self.stopped = True
        else:
            log.warning("ignored management message of type %r from the coordinator", kind)

    def _restore(self, message: dict[str, Any], now: float) -> None:
        try:
            self.service.restore(message["state"])
        except (KeyError, TypeError, ValueError) as error:
            log.error("ignored restore of snapshot %d: not a state of this service (%s)",
                      message["snapshot_id"], error)
            return
        for entry in message.get("in_flight", []):
            sender = entry.get("sender") if isinstance(entry, dict) else None
            replayed = entry.get("message") if isinstance(entry, dict) else None
            if sender not in self.peers or not isinstance(replayed, dict) or "kind" not in replayed:
                log.warning("ignored a malformed in-flight entry of restore: %s", entry)
                continue
            self._send_all(self.service.deliver(replayed, sender, self.peers[sender], now), now)
        self.link.send("restored", snapshot_id=message["snapshot_id"])
        log.info("restored the state of snapshot %d", message["snapshot_id"])

    def report_counters(self) -> None:
        self.counters.service_ignored_by = dict(getattr(self.service, "ignored_by", {}))
        self.link.send("counters", **asdict(self.counters))
