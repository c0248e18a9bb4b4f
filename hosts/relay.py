"""An out-group relay: ``python -m hosts.relay --listen IP:PORT --forward VIP:PORT``.

A relay stands for an external partner (another bank, a service on the
internet): every datagram it receives from the in-group becomes, after an
emulated WAN delay, a new datagram to ``--forward`` (a VIP), so it enters
the in-group again through a gateway. That is an external causal chain.
The new datagram copies the original's fields, except that the sender's
``sent_at`` becomes ``chain_started``: the in-group receiver measures the
whole chain on the host's one monotonic clock and reports the shortest in
its ``counters`` (what the coordinator needs to learn tau_min). With
``--secret-file`` (the run's secret, :mod:`topologies.secret`) the relay
seals every datagram it makes with an HMAC (``mac``): the bank takes a
credit from the out-group only as its partner's sealed answer to a transfer
the bank sent. Hosts on the data network never see the secret; with
``--partner IP`` (the bank's VIP, which its replies leave with) the relay
answers nobody else, so a stranger cannot have it seal a credit.

A relay sends from its listening socket, one flow to the VIP, which the
gateways' Maglev hash gives to one backend: every credit back would land
there, and the bank's money would gather at that node. With
``--answer-ports NODE=PORT,...`` it answers each node's transfers (the
node a transfer's series comes from, :mod:`hosts.services.transfers`) from
a socket bound to that node's port, one flow per node, as a partner bank
keeps a connection per correspondent; a datagram of a node not named, or
without a transfer, goes from the listening socket. The testbed picks the
ports so that each node's money comes back to another node
(:mod:`testbed.relay_ports`). A node's answers keep one flow, so one node
receives all of them, in order: the ranges of transfer ids a state keeps
stay few (answers spread over several nodes would leave every node a range
per transfer it got).

The delay is added by netem on ``--netem-dev`` when the kernel has netem,
otherwise inside this process (a timer per datagram); the startup line
says which. Relays send unmarked (TOS 0): they are not instrumented.
With ``--truth-log PATH`` the relay logs, as process ``relay@IP:PORT``, the
receive of every datagram carrying a message id and the send of the one it
derives from it, under a new id (:mod:`hosts.truth`): the oracle sees the
external causal chain.
The relay runs until SIGTERM/SIGINT, then prints ``stopped {json}``.
"""

from __future__ import annotations

import argparse
import heapq
import json
import logging
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hosts import wire
from hosts.loop import StoppableLoop, stop_on_signals
from hosts.services.transfers import origin_of, parse
from hosts.truth import MESSAGE_ID, RELAY, TruthLog, message_id_of
from topologies.secret import MAC_FIELD, RunSecret

log = logging.getLogger(__name__)


@dataclass
class RelayCounters:
    received: int = 0
    forwarded: int = 0
    malformed: int = 0
    malformed_by: dict[str, int] = field(default_factory=dict)
    """Datagrams ignored, by reason (:data:`hosts.wire.REASONS`, :data:`NOT_FROM_PARTNER`)."""


NOT_FROM_PARTNER = "not_from_partner"
"""Why a relay ignored a datagram: its source is not the partner it answers (``--partner``)."""


def add_netem(device: str, delay: float) -> str | None:
    """Delay everything leaving ``device`` with netem; returns why not, or None on success."""
    try:
        result = subprocess.run(
            ["tc", "qdisc", "add", "dev", device, "root", "netem", "delay", f"{delay * 1e6:.0f}us"],
            capture_output=True, text=True, check=False,
        )
    except OSError as error:
        return f"tc failed: {error}"
    if result.returncode != 0:
        return (result.stderr.strip().splitlines() or ["tc failed"])[-1]
    return None


def remove_netem(device: str) -> None:
    subprocess.run(["tc", "qdisc", "del", "dev", device, "root"], capture_output=True, check=False)


class Relay(StoppableLoop):
    """Turns received datagrams into delayed datagrams to one address."""

    def __init__(self, sock: socket.socket, forward: tuple[str, int], delay: float,
                 truth: TruthLog | None = None, secret: RunSecret | None = None,
                 partner: str | None = None,
                 answer_from: Mapping[str, socket.socket] | None = None):
        super().__init__()
        self.sock = sock
        self.answer_from = dict(answer_from or {})
        """Per in-group node, the socket its transfers are answered from (others: ``sock``)."""
        self.forward = forward
        self.delay = delay
        self.truth = truth
        self.secret = secret
        """The run's secret, to seal what the relay sends (None: unsealed)."""
        self.partner = partner
        """The only source address the relay answers (None: any)."""
        self.counters = RelayCounters()
        self._due: list[tuple[float, int, bytes, str | None, socket.socket]] = []
        """(when, arrival number, new datagram, its message id, the socket it leaves from)
        by time."""
        self.watch(sock, self._receive)

    def run(self) -> None:
        while not self.stopped:
            self.wait(None if not self._due else max(0.0, self._due[0][0] - time.monotonic()))
            self._forward_due(time.monotonic())

    def _receive(self) -> None:
        while (received := wire.receive(self.sock)) is not None:
            now = time.monotonic()
            payload, _code, source = received
            self.counters.received += 1
            if self.partner is not None and source[0] != self.partner:
                self.counters.malformed += 1
                wire.note_malformed(self.counters.malformed_by, wire.MalformedDatagram(
                    NOT_FROM_PARTNER, f"not from {self.partner}"), source, log)
                continue
            try:
                message = wire.decode(payload)
            except wire.MalformedDatagram as error:
                self.counters.malformed += 1
                wire.note_malformed(self.counters.malformed_by, error, source, log)
                continue
            message_id = message_id_of(message)
            new_id = None
            if self.truth is not None and message_id is not None:
                self.truth.receive(message_id, now)
                new_id = self.truth.new_message_id()
            heapq.heappush(self._due, (now + self.delay, self.counters.received,
                                       relayed(message, new_id, self.secret), new_id,
                                       self._sender_of(message)))

    def _sender_of(self, message: dict[str, Any]) -> socket.socket:
        """The socket the answer to ``message`` leaves from: that of its transfer's node."""
        try:
            series, _ = parse(message.get("transfer"))
        except ValueError:
            return self.sock
        return self.answer_from.get(origin_of(series), self.sock)

    def _forward_due(self, now: float) -> None:
        while self._due and self._due[0][0] <= now:
            _, _, payload, message_id, sender = heapq.heappop(self._due)
            if self.truth is not None and message_id is not None:
                self.truth.send(message_id, now)
            try:
                sender.sendto(payload, self.forward)
                self.counters.forwarded += 1
            except OSError as error:
                log.warning("could not forward to %s:%d: %s", *self.forward, error)


def relayed(message: dict[str, Any], message_id: str | None = None,
            secret: RunSecret | None = None) -> bytes:
    """The new datagram a relay makes from ``message`` (with ``message_id``, if given,
    sealed with ``secret``, if given)."""
    dropped = ("sent_at", MESSAGE_ID, MAC_FIELD)
    fields = {key: value for key, value in message.items() if key not in dropped}
    if "sent_at" in message:
        fields["chain_started"] = message["sent_at"]
    if message_id is not None:
        fields[MESSAGE_ID] = message_id
    return wire.encode(secret.seal(fields) if secret is not None else fields)


def parse_answer_ports(text: str) -> dict[str, int]:
    """``NODE=PORT,...`` as {node: port}, distinct ports in 1..65535 (empty text: none);
    ValueError if not."""
    ports: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        node, _, port = item.partition("=")
        if not node or not port.isdigit() or not 0 < int(port) < 65536 or node in ports:
            raise ValueError(f"--answer-ports must be NODE=PORT,... with ports in 1..65535, "
                             f"got {text!r}")
        ports[node] = int(port)
    if len(set(ports.values())) != len(ports):
        raise ValueError(f"--answer-ports must name distinct ports, got {text!r}")
    return ports


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hosts.relay",
        description="an out-group relay: in-group datagrams become delayed ones to a VIP")
    parser.add_argument("--listen", required=True, help="IP:PORT to receive on")
    parser.add_argument("--forward", required=True, help="IP:PORT (a VIP) to send to")
    parser.add_argument("--delay", type=float, default=0.02, help="WAN delay, seconds")
    parser.add_argument("--netem-dev", help="interface to delay with netem, if the kernel has it")
    parser.add_argument("--truth-log", help="write ground-truth events (receives, sends) here")
    parser.add_argument("--partner", help="answer only datagrams from this IP (the bank's VIP)")
    parser.add_argument("--secret-file", type=Path,
                        help="the run's secret (topologies.secret): seal every datagram sent")
    parser.add_argument("--answer-ports", default="",
                        help="NODE=PORT,...: answer each node's transfers from its own UDP "
                             "port, one flow per node (default: all from the listening port)")
    args = parser.parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format=f"%(asctime)s relay {args.listen} %(levelname)s %(message)s")
    try:
        listen, forward = wire.parse_address(args.listen), wire.parse_address(args.forward)
        if args.delay < 0:
            raise ValueError(f"--delay must be >= 0, got {args.delay}")
        answer_ports = parse_answer_ports(args.answer_ports)
        secret = RunSecret.load(args.secret_file) if args.secret_file else None
    except ValueError as error:
        print(f"hosts.relay: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"hosts.relay: cannot read {args.secret_file}: {error.strerror}", file=sys.stderr)
        return 1
    how = "in the relay process"
    in_process_delay = args.delay
    netem_added = False
    if args.netem_dev:
        problem = add_netem(args.netem_dev, args.delay)
        if problem is None:
            how, in_process_delay, netem_added = f"by netem on {args.netem_dev}", 0.0, True
        else:
            how = f"in the relay process (netem on {args.netem_dev} unavailable: {problem})"
    opened: list[socket.socket] = []
    try:
        for address in [listen, *((listen[0], port) for port in answer_ports.values())]:
            opened.append(wire.open_udp(address))
    except OSError as error:
        print(f"hosts.relay: cannot listen on {args.listen} or send from its --answer-ports: "
              f"{error}", file=sys.stderr)
        for sock in opened:
            sock.close()
        if netem_added:
            remove_netem(args.netem_dev)
        return 1
    sock, answer_from = opened[0], dict(zip(answer_ports, opened[1:], strict=True))
    bound = "{}:{}".format(*sock.getsockname())
    try:
        truth = TruthLog(Path(args.truth_log), f"relay@{bound}", RELAY) if args.truth_log else None
    except OSError as error:
        print(f"hosts.relay: cannot write {args.truth_log}: {error.strerror}", file=sys.stderr)
        for opened_sock in opened:
            opened_sock.close()
        if netem_added:
            remove_netem(args.netem_dev)
        return 1
    relay = Relay(sock, forward, in_process_delay, truth, secret, args.partner, answer_from)
    try:
        with stop_on_signals(relay):
            spread = (f", {len(answer_from)} nodes' transfers answered from ports of their own"
                      if answer_from else "")
            print(f"relay ready: {bound} -> {args.forward}{spread}, WAN delay "
                  f"{args.delay * 1e3:.3f} ms emulated {how}", flush=True)
            relay.run()
    finally:
        for opened_sock in opened:
            opened_sock.close()
        if truth is not None:
            truth.close()
        if netem_added:
            remove_netem(args.netem_dev)
    print("stopped", json.dumps(asdict(relay.counters)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
