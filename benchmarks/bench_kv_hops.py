"""Where a key-value request's time goes, without and with snapshots, from packet captures.

One emulated data center with the key-value store (as ``bench_run.py``'s
latency part): ``tcpdump`` runs on the client host's interface and on every
backend's, while a load client sends requests through the VIP for
``--duration`` seconds without snapshots, then as long with snapshots at
``--rate`` per second. A request is matched in the captures by its client's
port and ``rid``; all captures are on the one machine's clock, so each
request's round trip splits into three hops:

* ``to_backend``: from the client's interface to the backend's (the fabric's
  switch daemon and a gateway's, which stamps it);
* ``in_backend``: from the request reaching the backend's interface to the
  reply leaving it (the agent: its socket buffer, the runtime, the core, the
  service, and the wait for a CPU);
* ``back``: from the backend's interface to the client's (the fabric's
  daemon, rewriting the reply's source to the VIP on the way out).

Prints p50/p99 of each hop per phase, and their ratios; ``--json FILE``
writes them. Needs root, Open vSwitch and tcpdump::

    sudo .venv/bin/python benchmarks/bench_kv_hops.py --duration 10 --rate 100
"""

from __future__ import annotations

import argparse
import json
import shutil
import struct
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from beaver.protocols import PROTOCOLS
from controller.coordinator.store import Store
from hosts.agent import SERVICE_PORT
from stats import percentile
from testbed.emulation import MAX_UPDATE_WINDOW, Emulation, EmulationSettings
from testbed.network import machine_problem
from testbed.traffic import client_phase

HOPS = ("to_backend", "in_backend", "back", "round_trip")
ETHERNET, UDP_HEADER = 14, 8


def datagrams(pcap: Path) -> list[tuple[float, str, int, str, int, dict[str, Any]]]:
    """(time, source ip, source port, destination ip, destination port, JSON payload) of
    every UDP datagram of a classic pcap file with a JSON object as its payload."""
    data = pcap.read_bytes()
    found = []
    offset = 24  # the file's header
    while offset + 16 <= len(data):
        seconds, micros, length, _ = struct.unpack_from("<IIII", data, offset)
        frame = data[offset + 16:offset + 16 + length]
        offset += 16 + length
        ip = frame[ETHERNET:]
        if len(ip) < 20 or ip[9] != 17:
            continue
        udp = ip[(ip[0] & 0x0F) * 4:]
        source_port, destination_port = struct.unpack_from("!HH", udp)
        try:
            payload = json.loads(udp[UDP_HEADER:])
        except ValueError:
            continue
        if isinstance(payload, dict):
            found.append((seconds + micros / 1e6, ".".join(map(str, ip[12:16])), source_port,
                          ".".join(map(str, ip[16:20])), destination_port, payload))
    return found


def hops(client_pcap: Path, backend_pcaps: list[Path], client_ip: str,
         window: tuple[float, float]) -> dict[str, list[float]]:
    """Each hop's seconds for the requests the client sent within ``window``."""
    sent, answered = {}, {}
    for when, source, sport, _, dport, payload in datagrams(client_pcap):
        key = (sport if source == client_ip else dport, payload.get("rid"))
        if source == client_ip and payload.get("kind") in ("get", "put"):
            sent[key] = when
        elif payload.get("kind") == "reply":
            answered[key] = when
    arrived, left = {}, {}
    for pcap in backend_pcaps:
        for when, source, sport, _, dport, payload in datagrams(pcap):
            if source == client_ip and payload.get("kind") in ("get", "put"):
                arrived[(sport, payload.get("rid"))] = when
            elif payload.get("kind") == "reply":
                left[(dport, payload.get("rid"))] = when
    result: dict[str, list[float]] = {hop: [] for hop in HOPS}
    for key, out in sent.items():
        if not window[0] <= out <= window[1] or not all(key in d for d in (answered, arrived,
                                                                           left)):
            continue
        result["to_backend"].append(arrived[key] - out)
        result["in_backend"].append(left[key] - arrived[key])
        result["back"].append(answered[key] - left[key])
        result["round_trip"].append(answered[key] - out)
    return result


def wait_for_header(pcap: Path, timeout: float) -> None:
    """Until tcpdump has written the capture file's header (TimeoutError after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while not (pcap.exists() and pcap.stat().st_size >= 24):
        if time.monotonic() > deadline:
            raise TimeoutError(f"tcpdump wrote no capture to {pcap} within {timeout:g} s")
        time.sleep(0.05)


def summary(samples: dict[str, list[float]]) -> dict[str, Any]:
    def ms(values: list[float], share: float) -> float | None:
        value = percentile(values, share)
        return None if value is None else round(value * 1e3, 3)
    return {hop: {"p50": ms(values, 0.5), "p99": ms(values, 0.99), "requests": len(values)}
            for hop, values in samples.items()}


def measure(args: argparse.Namespace, scratch: Path) -> dict[str, Any]:
    settings = EmulationSettings(protocol=args.protocol, service="kv", workload_rate=20.0,
                                 update_window=args.window)
    figures: dict[str, Any] = {"protocol": args.protocol, "rate_hz": args.rate}
    with Store(scratch / "bench.db") as store:
        run = store.new_run(args.protocol, {"bench": "kv-hops"}, None, "given")
        with Emulation(settings, store, run) as emulation:
            emulation.tau_min(1.0)
            plan, datacenter = emulation.plan, emulation.datacenter
            client = next(x for x in plan.externals if x.role == "client")
            captured = {name: scratch / f"{name}.pcap"
                        for name in [client.name, *plan.services[0].backends]}
            dumps = [emulation.launch(name, [  # recorded, and stopped when the run ends
                "tcpdump", "-i", datacenter.host(name).defaultIntf().name, "-U", "-n",
                "-w", str(pcap), "udp", "port", str(SERVICE_PORT)], module=False)
                for name, pcap in captured.items()]
            try:
                for pcap in captured.values():  # its file header is written once it captures
                    wait_for_header(pcap, 10.0)
                windows = {}  # on the captures' clock: the kernel's real time
                for phase, rate in (("without", None), ("with", args.rate)):
                    began = time.time()
                    figures[f"client_{phase}"] = client_phase(emulation, args.client_rate,
                                                              args.duration, rate)
                    windows[phase] = (began, time.time())
            finally:
                for dump in dumps:
                    dump.popen.terminate()
                    dump.stop()
            backends = [captured[name] for name in plan.services[0].backends]
            for phase, window in windows.items():
                figures[phase] = summary(hops(captured[client.name], backends, client.ip,
                                              window))
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench_kv_hops.py",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per phase")
    parser.add_argument("--rate", type=float, default=100.0, help="snapshots per second")
    parser.add_argument("--client-rate", type=float, default=200.0,
                        help="client requests per second")
    parser.add_argument("--protocol", default="beaver", choices=sorted(PROTOCOLS))
    parser.add_argument("--window", type=int, default=MAX_UPDATE_WINDOW,
                        help="gateway updates in flight")
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    args = parser.parse_args(argv)
    if args.duration <= 0 or args.rate <= 0 or args.client_rate <= 0:
        print("bench_kv_hops.py: --duration, --rate and --client-rate must be > 0",
              file=sys.stderr)
        return 2
    problem = machine_problem() or (None if shutil.which("tcpdump") else
                                    "tcpdump is missing: run sudo ./setup.sh")
    if problem:
        print(f"bench_kv_hops.py: {problem}", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="bench-kv-hops-") as scratch:
        figures = measure(args, Path(scratch))
    for hop in HOPS:
        without, with_ = figures["without"][hop], figures["with"][hop]
        ratio = (with_["p50"] / without["p50"]) if without["p50"] else float("nan")
        print(f"{hop:>10}: p50/p99 {without['p50']}/{without['p99']} ms without, "
              f"{with_['p50']}/{with_['p99']} ms with {args.rate:g} snapshots/s "
              f"(p50 ratio {ratio:.2f}; {without['requests']} / {with_['requests']} requests)",
              flush=True)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
