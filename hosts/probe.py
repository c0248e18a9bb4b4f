"""Traffic probes run inside emulated hosts: a UDP/TCP echo server and a client.

``python -m hosts.probe serve --udp 5000 --tcp 5001`` prints ``ready``
once both sockets are bound, then one JSON line per datagram or connection:
``{"proto", "src", "sport", "dport", "code"}`` and echoes the payload back.
``code`` is the 10-bit wire code, the TOS byte and the TTL's two lowest bits
read per datagram with ``IP_RECVTOS`` and ``IP_RECVTTL`` (:mod:`hosts.wire`);
it is null for TCP (a stream socket does not report them).

``python -m hosts.probe send udp|tcp HOST PORT --sport S --count N
[--flows F] [--code C]`` sends ``N`` datagrams (or one TCP exchange) from
source port ``S`` (then ``S+1``... for ``F`` flows), wire code ``C`` in their
TOS byte and TTL (no entropy), and prints one JSON line per reply:
``{"reply_from", "payload"}``, then ``done``.
"""

from __future__ import annotations

import argparse
import json
import select
import socket
import sys

from beaver.ids import IPV4_ID_BITS, ipv4_marks
from hosts.wire import marked_code, report_marks

BUFFER = 2048


def serve(udp_port: int, tcp_port: int) -> None:
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    report_marks(udp)
    udp.bind(("0.0.0.0", udp_port))
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    tcp.bind(("0.0.0.0", tcp_port))
    tcp.listen(16)
    print("ready", flush=True)
    while True:
        readable, _, _ = select.select([udp, tcp], [], [])
        if udp in readable:
            data, ancillary, _, source = udp.recvmsg(BUFFER, 2 * socket.CMSG_SPACE(4))
            report("udp", source, udp_port, marked_code(ancillary))
            udp.sendto(data, source)
        if tcp in readable:
            connection, source = tcp.accept()
            with connection:
                connection.settimeout(5)
                data = connection.recv(BUFFER)
                report("tcp", source, tcp_port, None)
                connection.sendall(data)


def report(proto: str, source: tuple[str, int], port: int, code: int | None) -> None:
    line = {"proto": proto, "src": source[0], "sport": source[1], "dport": port, "code": code}
    print(json.dumps(line), flush=True)


def send(proto: str, host: str, port: int, sport: int, count: int, code: int,
         timeout: float, flows: int = 1) -> None:
    for flow in range(flows):
        send_flow(proto, host, port, sport + flow, count, code, timeout)
    print("done", flush=True)


def send_flow(proto: str, host: str, port: int, sport: int, count: int, code: int,
              timeout: float) -> None:
    kind = socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        tos, ttl = ipv4_marks(code)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, tos)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, ttl)
        sock.bind(("0.0.0.0", sport))
        sock.settimeout(timeout)
        if proto == "tcp":
            sock.connect((host, port))
            sock.sendall(b"probe 0")
            print(json.dumps({"reply_from": sock.getpeername()[0],
                              "payload": sock.recv(BUFFER).decode()}), flush=True)
        else:
            for index in range(count):
                sock.sendto(f"probe {index}".encode(), (host, port))
                try:
                    data, source = sock.recvfrom(BUFFER)
                except TimeoutError:
                    print(json.dumps({"timeout": index}), flush=True)
                    continue
                print(json.dumps({"reply_from": source[0], "payload": data.decode()}),
                      flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hosts.probe")
    commands = parser.add_subparsers(dest="command", required=True)
    server = commands.add_parser("serve")
    server.add_argument("--udp", type=int, required=True)
    server.add_argument("--tcp", type=int, required=True)
    client = commands.add_parser("send")
    client.add_argument("proto", choices=("udp", "tcp"))
    client.add_argument("host")
    client.add_argument("port", type=int)
    client.add_argument("--sport", type=int, required=True)
    client.add_argument("--count", type=int, default=1, help="datagrams per flow (UDP)")
    client.add_argument("--flows", type=int, default=1,
                        help="flows one after another, from source ports sport, sport+1, ...")
    client.add_argument("--code", type=int, default=0, choices=range(1 << IPV4_ID_BITS),
                        metavar=f"0..{(1 << IPV4_ID_BITS) - 1}",
                        help="wire code: the TOS byte and the TTL's two lowest bits sent")
    client.add_argument("--timeout", type=float, default=2.0)
    args = parser.parse_args(argv)
    try:
        if args.command == "serve":
            serve(args.udp, args.tcp)
        else:
            send(args.proto, args.host, args.port, args.sport, args.count, args.code,
                 args.timeout, args.flows)
    except KeyboardInterrupt:
        return 130
    except OSError as error:
        print(f"python -m hosts.probe: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
