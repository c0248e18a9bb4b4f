"""A datagram stream that says when each datagram left and which id it arrived with.

``send HOST PORT --sport S --duration D --interval I`` sends UDP datagrams
whose payload is their send time (``time.monotonic()``, one clock for every
namespace of the machine) until D seconds are over; it prints ``sending``
after the first and ``done`` at the end.
``receive PORT`` prints ``ready``, then ``SENT_AT CODE ARRIVED_AT`` for every
datagram (its wire code: the TOS byte and TTL bits, :mod:`hosts.wire`; the time it was
read), until it is terminated.
"""

from __future__ import annotations

import argparse
import socket
import sys
import time

from hosts.wire import marked_code, report_marks


def send(host: str, port: int, sport: int, duration: float, interval: float) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("0.0.0.0", sport))
        end = time.monotonic() + duration
        sock.sendto(repr(time.monotonic()).encode(), (host, port))
        print("sending", flush=True)
        while (now := time.monotonic()) < end:
            time.sleep(interval)
            sock.sendto(repr(now).encode(), (host, port))
    print("done", flush=True)


def receive(port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        report_marks(sock)
        sock.bind(("0.0.0.0", port))
        print("ready", flush=True)
        while True:
            data, ancillary, _, _ = sock.recvmsg(64, 2 * socket.CMSG_SPACE(4))
            print(f"{data.decode()} {marked_code(ancillary)} {time.monotonic()!r}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    sender = commands.add_parser("send")
    sender.add_argument("host")
    sender.add_argument("port", type=int)
    sender.add_argument("--sport", type=int, required=True)
    sender.add_argument("--duration", type=float, required=True)
    sender.add_argument("--interval", type=float, default=0.0005)
    receiver = commands.add_parser("receive")
    receiver.add_argument("port", type=int)
    args = parser.parse_args(argv)
    if args.command == "send":
        send(args.host, args.port, args.sport, args.duration, args.interval)
    else:
        receive(args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
