"""An external key-value client: ``python -m hosts.client --vip IP:PORT --rate R --duration S``.

It sends ``put`` and ``get`` requests alternately (keys ``k0``..``k<keys-1>``)
at a fixed rate to the VIP for ``--duration`` seconds, matches replies to
requests by ``rid``, waits ``--grace`` seconds for late replies, and prints
one ``summary {json}`` line: requests sent, replies, how many replies came
from the VIP itself (the network rewrites the backend's source address),
replies lost, and latency percentiles in milliseconds. It prints ``client
ready ...`` once its socket is bound; SIGTERM/SIGINT end the run early (the
summary is still printed).
"""

from __future__ import annotations

import argparse
import json
import logging
import socket
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from hosts import wire
from hosts.loop import StoppableLoop, stop_on_signals
from stats import percentile

log = logging.getLogger(__name__)


@dataclass
class ClientStats:
    sent: int = 0
    replies: int = 0
    from_vip: int = 0
    unexpected: int = 0
    """Datagrams that answer no outstanding request (late duplicates, malformed)."""
    malformed_by: dict[str, int] = field(default_factory=dict)
    """The malformed ones among them, by reason (:data:`hosts.wire.REASONS`)."""
    latencies: list[float] = field(default_factory=list)

    def summary(self, outstanding: int) -> dict[str, Any]:
        def latency_ms(share: float) -> float | None:
            seconds = percentile(self.latencies, share)
            return None if seconds is None else round(seconds * 1e3, 3)

        return {
            "sent": self.sent, "replies": self.replies, "from_vip": self.from_vip,
            "lost": outstanding, "unexpected": self.unexpected,
            "malformed_by": dict(self.malformed_by),
            "latency_ms": {"p50": latency_ms(0.5), "p99": latency_ms(0.99),
                           "max": latency_ms(1.0)},
        }


class Client(StoppableLoop):
    def __init__(self, sock: socket.socket, vip: tuple[str, int], *, rate: float, keys: int):
        super().__init__()
        self.sock = sock
        self.vip = vip
        self.period = 1 / rate
        self.keys = keys
        self.stats = ClientStats()
        self._outstanding: dict[int, float] = {}
        self.watch(sock, self._receive)

    @property
    def outstanding(self) -> int:
        return len(self._outstanding)

    def run(self, duration: float, grace: float) -> None:
        start = time.monotonic()
        sending_until, end = start + duration, start + duration + grace
        next_send = start
        while not self.stopped:
            now = time.monotonic()
            while next_send <= min(now, sending_until):
                self._request(now)
                next_send += self.period
            if now >= end or (now >= sending_until and not self._outstanding):
                return
            wake = min(next_send, end) if next_send <= sending_until else end
            self.wait(max(0.0, wake - now))

    def _request(self, now: float) -> None:
        rid = self.stats.sent
        key = f"k{(rid // 2) % self.keys}"
        request: dict[str, Any] = {"kind": "put" if rid % 2 == 0 else "get", "rid": rid, "key": key}
        if rid % 2 == 0:
            request["value"] = rid
        try:
            self.sock.sendto(wire.encode(request), self.vip)
        except OSError as error:
            log.warning("could not send to %s:%d: %s", *self.vip, error)
            return
        self.stats.sent += 1
        self._outstanding[rid] = now

    def _receive(self) -> None:
        now = time.monotonic()
        while (received := wire.receive(self.sock)) is not None:
            payload, _code, source = received
            try:
                reply = wire.decode(payload)
            except wire.MalformedDatagram as error:
                self.stats.unexpected += 1
                wire.note_malformed(self.stats.malformed_by, error, source, log)
                continue
            rid = reply.get("rid")
            sent_at = self._outstanding.pop(rid, None) if type(rid) is int else None
            if reply["kind"] != "reply" or sent_at is None:
                self.stats.unexpected += 1
                continue
            self.stats.replies += 1
            self.stats.from_vip += source == self.vip
            self.stats.latencies.append(now - sent_at)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hosts.client",
        description="an external key-value client that loads a VIP")
    parser.add_argument("--vip", required=True, help="IP:PORT of the key-value service")
    parser.add_argument("--bind", default="0.0.0.0", help="local address to send from")
    parser.add_argument("--rate", type=float, default=50.0, help="requests per second")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of load")
    parser.add_argument("--grace", type=float, default=1.0, help="seconds to wait for late replies")
    parser.add_argument("--keys", type=int, default=100, help="distinct keys")
    args = parser.parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="%(asctime)s client %(levelname)s %(message)s")
    try:
        vip = wire.parse_address(args.vip)
        if args.rate <= 0 or args.duration < 0 or args.grace < 0 or args.keys < 1:
            raise ValueError("--rate must be > 0, --duration and --grace >= 0, --keys >= 1")
    except ValueError as error:
        print(f"hosts.client: {error}", file=sys.stderr)
        return 2
    try:
        sock = wire.open_udp((args.bind, 0))
    except OSError as error:
        print(f"hosts.client: cannot bind {args.bind}: {error}", file=sys.stderr)
        return 1
    client = Client(sock, vip, rate=args.rate, keys=args.keys)
    try:
        with stop_on_signals(client):
            print(f"client ready: {sock.getsockname()[0]}:{sock.getsockname()[1]} -> {args.vip}, "
                  f"{args.rate:g} requests/s for {args.duration:g} s", flush=True)
            client.run(args.duration, args.grace)
    finally:
        sock.close()
    print("summary", json.dumps(client.stats.summary(client.outstanding)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
