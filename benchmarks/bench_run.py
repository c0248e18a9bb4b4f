"""What taking snapshots costs the in-group, measured in the emulated data center.

Three measurements, each in its own data center, each comparing two phases
of the same run:

1. the highest snapshot rate a run sustains: ``--probe`` Beaver snapshots
   asked for as fast as possible (:mod:`testbed.bursts`), started per second,
   first with one gateway update at a time (``sustained_snapshot_rate_serial_hz``),
   then with ``--window`` updates pipelined (``sustained_snapshot_rate_hz``), and
   how many of the pipelined burst's accepted snapshots the oracle judges
   inconsistent or break the bank invariant, and each process's extra CPU per
   snapshot in each burst (``serial_cpu_ms_per_snapshot``,
   ``parallel_cpu_ms_per_snapshot``: its CPU in the burst less its rate in the
   bank's phases without snapshots times the burst's length, per snapshot
   started);
2. bank throughput (credits delivered per second, from the agents'
   counters) without snapshots and with ``--overhead-rate`` snapshots per
   second (default 100), and user latency p50/p99: external key-value
   clients' requests through the gateways to the VIP (the bank has no
   request/reply traffic to time), without and with snapshots at that rate;
   printed as ratios, with the snapshot rate each phase reached. The bank's
   rate drifts down through a run whatever the snapshots do: every credit
   from the relay is one flow, which the gateways send to one backend, so
   money gathers there and the other shards, short of funds, make fewer
   transfers, until the money settles (measured here: from ~390 to ~270
   credits/s within ~25 s of the start). So the phases begin after
   ``--settle`` seconds of workload, and are cut into ``--rounds`` rounds of
   four slices, without-with-with-without: both phases have the same mean
   time in the run and a drift at a steady pace cancels out of the ratio.
   The A/A calibration compares the outer without slices of each pair of
   rounds with the inner ones (also the same mean time). Both parts also give
   each process's extra CPU per snapshot (``bank_cpu_ms_per_snapshot``,
   ``client_cpu_ms_per_snapshot``: its CPU in the with phases less its rate
   without times their length, per snapshot started; ``/proc/PID/stat``, in
   10 ms ticks), by part of the run: coordinator, each agent, relays, load
   clients, controller, gateway and fabric switch daemons. ``--protocol
   lai-yang`` runs both parts under Lai-Yang, which takes the same local
   snapshots, reports and notifications but updates no gateway;
3. bytes on the data links (every data-plane switch port's tx bytes, from
   ``ovs-ofctl dump-ports``; the management network is not counted) without
   snapshots and with ``--snapshot-rate`` snapshots per second, for each
   protocol: the extra bytes per snapshot, beyond what the bank's own
   datagrams account for.

Needs root and Open vSwitch; prints one line per figure, ``--json FILE``
writes them all::

    sudo .venv/bin/python benchmarks/bench_run.py --duration 10 --json bench_run.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cpu_time import PartsCpu, emulation_parts  # noqa: E402  (beside this script)

from beaver.protocols import PROTOCOLS  # noqa: E402
from controller.coordinator.store import Store  # noqa: E402
from controller.gateways.datapath import SYNC_MODES  # noqa: E402
from testbed.bursts import PIPELINED_BURST, burst, judge_bursts  # noqa: E402
from testbed.emulation import MAX_UPDATE_WINDOW, Emulation, EmulationSettings  # noqa: E402
from testbed.network import machine_problem  # noqa: E402
from testbed.traffic import client_phase, data_tx_bytes, delivered  # noqa: E402
from testbed.traffic import phase as snapshots_for  # noqa: E402

PARTS = ("throughput", "latency", "bytes")
ROUND = ("without", "with", "with", "without")
"""The slices of one round of the bank's phases, in the order they run."""


def start_rate(store: Store, run: int, first: int) -> float | None:
    """Snapshots started per second from snapshot ``first`` on (first t0 to last)."""
    starts = [row["t0"] for row in store.snapshot_rows(run) if row["snapshot_id"] >= first]
    return (len(starts) - 1) / (starts[-1] - starts[0]) if len(starts) > 1 else None


def bank_rounds(emulation: Emulation, args: argparse.Namespace,
                cpu: PartsCpu) -> dict[str, Any]:
    """Credits per second without and with snapshots, over ``args.rounds`` rounds of
    :data:`ROUND` (each phase ``args.duration`` seconds in all), the A/A calibration, the
    snapshots started per second of the with slices and each part's CPU per snapshot
    (``cpu`` counts the slices as its ``without`` and ``with`` phases)."""
    assert emulation.service is not None
    seconds = args.duration / (2 * args.rounds)
    snapshots_for(emulation, args.settle, None)
    slices: list[tuple[str, float, float]] = []
    started = 0
    for _ in range(args.rounds):
        for phase in ROUND:
            before, began = delivered(emulation), time.monotonic()
            newest = emulation.service.core.newest
            with cpu.phase(phase):
                snapshots_for(emulation, seconds,
                              args.overhead_rate if phase == "with" else None)
            slices.append((phase, delivered(emulation) - before, time.monotonic() - began))
            started += emulation.service.core.newest - newest

    def rate(chosen: list[tuple[str, float, float]]) -> float:
        return sum(credits for _, credits, _ in chosen) / sum(took for _, _, took in chosen)

    withouts = [piece for piece in slices if piece[0] == "without"]
    outer = [piece for i, piece in enumerate(withouts) if i % 4 in (0, 3)]
    inner = [piece for i, piece in enumerate(withouts) if i % 4 in (1, 2)]
    return {"without": rate(withouts), "with": rate([p for p in slices if p[0] == "with"]),
            "calibration": rate(inner) / rate(outer) if args.rounds > 1 else None,
            "slices": [{"phase": phase, "credits_per_s": credits / took, "seconds": took}
                       for phase, credits, took in slices],
            "snapshot_rate": started / sum(took for phase, _, took in slices if phase == "with"),
            "cpu": cpu.ms_per_snapshot(started)}


def bank_throughput(args: argparse.Namespace, store: Store) -> dict[str, Any]:
    settings = EmulationSettings(protocol=args.protocol, workload_rate=args.bank_rate,
                                 relay_ports_per_backend=args.relay_ports_per_backend,
                                 datapath_sync=args.datapath_sync)
    run = store.new_run(args.protocol, {"bench": "throughput"}, None, "measured")
    with Emulation(settings, store, run) as emulation:
        emulation.tau_min(None)
        cpu = PartsCpu(emulation_parts(emulation))
        with cpu.phase("serial"):
            serial = burst(emulation, args.probe, 1)
        with cpu.phase("parallel"):
            parallel = burst(emulation, args.probe, args.window)
        rate = parallel.start_rate_hz or 0.0
        rates = bank_rounds(emulation, args, cpu)
        emulation.stop_hosts()
        _, worth = judge_bursts(emulation, store, run, [serial, parallel])
    return {"sustained_snapshot_rate_hz": rate,
            "sustained_snapshot_rate_serial_hz": serial.start_rate_hz or 0.0,
            "parallel_window": args.window, "overhead_rate_hz": args.overhead_rate,
            "parallel_accepted": worth.accepted,
            "parallel_inconsistent_accepted": worth.inconsistent_accepted,
            "parallel_invariant_violations": worth.invariant_violations,
            "bank_credits_per_s_without": rates["without"],
            "bank_credits_per_s_with": rates["with"],
            "bank_throughput_ratio": rates["with"] / rates["without"],
            "bank_calibration_ratio": rates["calibration"],
            "bank_snapshot_rate_hz": rates["snapshot_rate"],
            "bank_slices": rates["slices"], "bank_cpu_ms_per_snapshot": rates["cpu"],
            "serial_cpu_ms_per_snapshot": cpu.ms_per_snapshot(serial.started, "serial"),
            "parallel_cpu_ms_per_snapshot": cpu.ms_per_snapshot(parallel.started, "parallel"),
            "relay_ports_per_backend": args.relay_ports_per_backend}


def client_latency(args: argparse.Namespace, store: Store, rate: float) -> dict[str, Any]:
    settings = EmulationSettings(protocol=args.protocol, service="kv",
                                 workload_rate=args.kv_rate, update_window=args.window,
                                 datapath_sync=args.datapath_sync)
    run = store.new_run(args.protocol, {"bench": "latency"}, None, "given")
    summaries = {}
    with Emulation(settings, store, run) as emulation:
        assert emulation.service is not None
        emulation.tau_min(1.0)  # validity does not matter here; the kv sends through no relay
        cpu = PartsCpu(emulation_parts(emulation))
        for phase, asked in (("without", None), ("with", rate)):
            first = emulation.service.core.newest + 1
            with cpu.phase(phase):
                summaries[phase] = client_phase(emulation, args.client_rate, args.duration,
                                                asked)
        reached = start_rate(store, run, first)
        taken = emulation.service.core.newest - first + 1
    without, with_ = summaries["without"], summaries["with"]
    return {
        "client_latency_ms_without": without["latency_ms"],
        "client_latency_ms_with": with_["latency_ms"],
        "client_p99_ratio": with_["latency_ms"]["p99"] / without["latency_ms"]["p99"],
        "client_replies_ratio": with_["replies"] / max(1, without["replies"]),
        "client_lost": {"without": without["lost"], "with": with_["lost"]},
        "client_snapshot_rate_hz": reached,
        "client_cpu_ms_per_snapshot": cpu.ms_per_snapshot(taken),
    }


def link_bytes(args: argparse.Namespace, store: Store, protocol: str) -> dict[str, Any]:
    """Data-link bytes per datagram delivered without snapshots, then the extra per snapshot.

    The bank's random workload is not the same in both phases (snapshots
    slow the agents down a little), so the workload's share of the second
    phase is estimated from its delivered datagrams at the first phase's
    bytes per datagram; the rest is charged to the snapshots.
    """
    settings = EmulationSettings(protocol=protocol, workload_rate=args.bank_rate_bytes)
    run = store.new_run(protocol, {"bench": "bytes"}, None, "given")
    sent, moved = {}, {}
    with Emulation(settings, store, run) as emulation:
        emulation.tau_min(1.0)
        for phase, snapshot_rate in (("without", None), ("with", args.snapshot_rate)):
            bytes_before, delivered_before = data_tx_bytes(emulation), delivered(emulation)
            snapshots_for(emulation, args.duration, snapshot_rate)
            sent[phase] = data_tx_bytes(emulation) - bytes_before
            moved[phase] = delivered(emulation) - delivered_before
    per_datagram = sent["without"] / max(1, moved["without"])
    snapshots = max(1, round(args.snapshot_rate * args.duration))
    extra = (sent["with"] - per_datagram * moved["with"]) / snapshots
    return {"protocol": protocol, "data_bytes_per_delivered_datagram": per_datagram,
            "datagrams_without": moved["without"], "datagrams_with": moved["with"],
            "data_bytes_without": sent["without"], "data_bytes_with": sent["with"],
            "extra_bytes_per_snapshot": extra}


def reached(value: float | None, form: str = ".0f") -> str:
    """A figure that may be missing (fewer than two snapshots, one round), for printing."""
    return "-" if value is None else format(value, form)


def parallel_gain(figures: dict[str, Any]) -> float:
    """The pipelined start rate over the serial one of the same run (NaN without one)."""
    serial = figures["sustained_snapshot_rate_serial_hz"]
    return figures["sustained_snapshot_rate_hz"] / serial if serial else float("nan")


def print_cpu(part: str, cpu: dict[str, float]) -> None:
    """One line: each part's extra CPU milliseconds per snapshot in a part of the benchmark."""
    print(f"{part} phases, ms of CPU per snapshot: "
          + ", ".join(f"{name} {ms:.2f}" for name, ms in cpu.items()), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench_run.py", description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per phase")
    parser.add_argument("--probe", type=int, default=PIPELINED_BURST,
                        help="snapshots asked for at once to find the sustained rate")
    parser.add_argument("--window", type=int, default=MAX_UPDATE_WINDOW,
                        help="gateway updates in flight for the parallel rate (default "
                             f"{MAX_UPDATE_WINDOW}, as many as the emulation allows)")
    parser.add_argument("--overhead-rate", type=float, default=100.0,
                        help="snapshots per second in the throughput and latency phases "
                             "(default 100)")
    parser.add_argument("--rounds", type=int, default=2,
                        help="rounds of without-with-with-without slices the bank's phases "
                             "are cut into (default 2)")
    parser.add_argument("--settle", type=float, default=15.0,
                        help="seconds of bank workload before its phases (default 15)")
    parser.add_argument("--protocol", default="beaver", choices=sorted(PROTOCOLS),
                        help="protocol of the throughput and latency parts (default beaver; "
                             "lai-yang takes the same reports and notifications but updates "
                             "no gateway)")
    parser.add_argument("--datapath-sync", choices=SYNC_MODES,
                        help="how gateway acks wait for the datapath in the throughput and "
                             f"latency parts (default: the controller's, {SYNC_MODES[0]})")
    parser.add_argument("--relay-ports-per-backend", type=int, choices=(0, 1),
                        default=EmulationSettings.relay_ports_per_backend,
                        help="1 (default): the relay answers each node's transfers on a flow "
                             "of its own, which the gateways give to another node; 0: on one "
                             "flow, which sends every credit back to one backend")
    parser.add_argument("--bank-rate", type=float, default=100.0,
                        help="bank transfers per second per host (throughput part)")
    parser.add_argument("--kv-rate", type=float, default=20.0,
                        help="key-value replication flushes per second per host")
    parser.add_argument("--client-rate", type=float, default=200.0,
                        help="client requests per second")
    parser.add_argument("--bank-rate-bytes", type=float, default=20.0,
                        help="bank transfers per second per host (bytes part)")
    parser.add_argument("--snapshot-rate", type=float, default=20.0,
                        help="snapshots per second in the bytes part")
    parser.add_argument("--protocols", default=",".join(PROTOCOLS),
                        help="protocols of the bytes part")
    parser.add_argument("--parts", default=",".join(PARTS),
                        help=f"what to measure (default all: {','.join(PARTS)})")
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    args = parser.parse_args(argv)
    protocols = args.protocols.split(",")
    parts = args.parts.split(",")
    unknown = sorted(set(protocols) - set(PROTOCOLS)) + sorted(set(parts) - set(PARTS))
    if (unknown or args.duration <= 0 or args.snapshot_rate <= 0 or args.overhead_rate <= 0
            or args.rounds < 1 or args.settle < 0):
        print(f"bench_run.py: unknown protocols or parts {unknown}, or non-positive "
              "duration/rate/rounds, or a negative settle", file=sys.stderr)
        return 2
    problem = machine_problem()
    if problem:
        print(f"bench_run.py: {problem}", file=sys.stderr)
        return 1
    figures: dict[str, Any] = {"protocol": args.protocol,
                               "datapath_sync": args.datapath_sync or SYNC_MODES[0]}
    with tempfile.TemporaryDirectory(prefix="bench-run-") as scratch, \
            Store(Path(scratch) / "bench.db") as store:
        if "throughput" in parts:
            figures |= bank_throughput(args, store)
            print(f"sustained snapshot rate {figures['sustained_snapshot_rate_hz']:.0f} Hz with "
                  f"{args.window} gateway updates in flight, "
                  f"{figures['sustained_snapshot_rate_serial_hz']:.0f} Hz one at a time: ratio "
                  f"{parallel_gain(figures):.2f}; "
                  f"of {figures['parallel_accepted']} accepted in parallel, "
                  f"{figures['parallel_inconsistent_accepted']} judged inconsistent, "
                  f"{figures['parallel_invariant_violations']} break the invariant", flush=True)
            print(f"bank throughput: "
                  f"bank credits/s {figures['bank_credits_per_s_without']:.0f} without, "
                  f"{figures['bank_credits_per_s_with']:.0f} with {args.overhead_rate:g} "
                  f"snapshots/s asked ({reached(figures['bank_snapshot_rate_hz'])} reached): "
                  f"ratio {figures['bank_throughput_ratio']:.3f}, A/A "
                  f"{reached(figures['bank_calibration_ratio'], '.3f')}", flush=True)
            print_cpu("serial burst", figures["serial_cpu_ms_per_snapshot"])
            print_cpu("parallel burst", figures["parallel_cpu_ms_per_snapshot"])
            print_cpu("bank", figures["bank_cpu_ms_per_snapshot"])
        if "latency" in parts:
            figures |= client_latency(args, store, args.overhead_rate)
            without, with_ = figures["client_latency_ms_without"], figures["client_latency_ms_with"]
            print(f"client latency p50/p99 {without['p50']}/{without['p99']} ms without, "
                  f"{with_['p50']}/{with_['p99']} ms with snapshots "
                  f"({reached(figures['client_snapshot_rate_hz'])}/s reached): p99 ratio "
                  f"{figures['client_p99_ratio']:.3f}, replies ratio "
                  f"{figures['client_replies_ratio']:.3f}", flush=True)
            print_cpu("client", figures["client_cpu_ms_per_snapshot"])
        figures["bytes"] = []
        for protocol in protocols if "bytes" in parts else []:
            row = link_bytes(args, store, protocol)
            figures["bytes"].append(row)
            print(f"{protocol:>15}: {row['data_bytes_per_delivered_datagram']:.0f} B on data "
                  f"links per bank datagram; with {args.snapshot_rate:g} snapshots/s "
                  f"{row['extra_bytes_per_snapshot']:.0f} B more per snapshot", flush=True)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
