"""An out-group relay: ``python -m hosts.relay --listen IP:PORT --forward VIP:PORT``.

A relay stands for an external partner (another bank, a service on the
internet): every datagram it receives from the in-group becomes, after an
emulated WAN delay, a new datagram to ``--forward`` (a VIP), so it enters
the in-group again through a gateway. That is an external causal chain.
The new datagram copies the original's fields, except that the sender's
``sent_at`` becomes ``chain_started``: the in-group receiver measures the
whole chain on the host's one monotonic clock and reports the shortest in
its ``counters`` (what the coordinator needs to learn tau_min).

The delay is added by netem on ``--netem-dev`` when the kernel has netem,
otherwise inside this process (a timer per datagram); the startup line
says which. Relays send unmarked (DSCP 0): they are not instrumented.
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
from dataclasses import asdict, dataclass
from typing import Any

from hosts import wire
from hosts.loop import StoppableLoop, stop_on_signals

log = logging.getLogger(__name__)


@dataclass
class RelayCounters:
    received: int = 0
    forwarded: int = 0
    malformed: int = 0


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

    def __init__(self, sock: socket.socket, forward: tuple[str, int], delay: float):
        super().__init__()
        self.sock = sock
        self.forward = forward
        self.delay = delay
        self.counters = RelayCounters()
        self._due: list[tuple[float, int, bytes]] = []
        self.watch(sock, self._receive)

    def run(self) -> None:
        while not self.stopped:
            self.wait(None if not self._due else max(0.0, self._due[0][0] - time.monotonic()))
            self._forward_due(time.monotonic())

    def _receive(self) -> None:
        now = time.monotonic()
        while (received := wire.receive(self.sock)) is not None:
            payload, _dscp, source = received
            self.counters.received += 1
            try:
                message = wire.decode(payload)
            except wire.MalformedDatagram as error:
                self.counters.malformed += 1
                log.warning("ignored malformed datagram from %s:%d: %s", *source, error)
                continue
            heapq.heappush(self._due, (now + self.delay, self.counters.received, relayed(message)))

    def _forward_due(self, now: float) -> None:
        while self._due and self._due[0][0] <= now:
            _, _, payload = heapq.heappop(self._due)
            try:
                self.sock.sendto(payload, self.forward)
                self.counters.forwarded += 1
            except OSError as error:
                log.warning("could not forward to %s:%d: %s", *self.forward, error)


def relayed(message: dict[str, Any]) -> bytes:
    """The new datagram a relay makes from ``message``."""
    fields = {key: value for key, value in message.items() if key != "sent_at"}
    if "sent_at" in message:
        fields["chain_started"] = message["sent_at"]
    return wire.encode(fields)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hosts.relay",
        description="an out-group relay: in-group datagrams become delayed ones to a VIP")
    parser.add_argument("--listen", required=True, help="IP:PORT to receive on")
    parser.add_argument("--forward", required=True, help="IP:PORT (a VIP) to send to")
    parser.add_argument("--delay", type=float, default=0.02, help="WAN delay, seconds")
    parser.add_argument("--netem-dev", help="interface to delay with netem, if the kernel has it")
    args = parser.parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format=f"%(asctime)s relay {args.listen} %(levelname)s %(message)s")
    try:
        listen, forward = wire.parse_address(args.listen), wire.parse_address(args.forward)
        if args.delay < 0:
            raise ValueError(f"--delay must be >= 0, got {args.delay}")
    except ValueError as error:
        print(f"hosts.relay: {error}", file=sys.stderr)
        return 2
    how = "in the relay process"
    in_process_delay = args.delay
    netem_added = False
    if args.netem_dev:
        problem = add_netem(args.netem_dev, args.delay)
        if problem is None:
            how, in_process_delay, netem_added = f"by netem on {args.netem_dev}", 0.0, True
        else:
            how = f"in the relay process (netem on {args.netem_dev} unavailable: {problem})"
    try:
        sock = wire.open_udp(listen)
    except OSError as error:
        print(f"hosts.relay: cannot listen on {args.listen}: {error}", file=sys.stderr)
        if netem_added:
            remove_netem(args.netem_dev)
        return 1
    relay = Relay(sock, forward, in_process_delay)
    bound = "{}:{}".format(*sock.getsockname())
    try:
        with stop_on_signals(relay):
            print(f"relay ready: {bound} -> {args.forward}, WAN delay {args.delay * 1e3:.3f} ms "
                  f"emulated {how}", flush=True)
            relay.run()
    finally:
        sock.close()
        if netem_added:
            remove_netem(args.netem_dev)
    print("stopped", json.dumps(asdict(relay.counters)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
