"""Benchmark: wall time of the simulator (plus the oracle) as the in-group grows.

Runs Beaver with |G| = 16 gateways and 1,000 snapshots, for N = 125, 250,
500 and 1,000 in-group nodes (or the sizes given), and prints wall and CPU
time, events per CPU second, the ratio of CPU time to the previous size
(CPU time is steadier than wall time on a busy machine), that ratio per
doubling of N, and the process's peak memory so far. Each node sends
``--message-rate-hz`` in-group messages per second, so traffic and
notifications both grow linearly with N: the ratios should stay near 2.
``--json`` adds one JSON line per size.

    .venv/bin/python benchmarks/bench_sim.py            # the full series
    .venv/bin/python benchmarks/bench_sim.py --nodes 1000 --profile
    .venv/bin/python benchmarks/bench_sim.py --nodes 10000 --gateways 64 --externals 100
"""

from __future__ import annotations

import argparse
import cProfile
import json
import math
import pstats
import resource
import time

from simulator import US, Workload, WorldConfig, simulate


def config(nodes: int, args: argparse.Namespace) -> WorldConfig:
    return WorldConfig(
        protocol="beaver",
        nodes=nodes,
        gateways=args.gateways,
        externals=args.externals,
        snapshots=args.snapshots,
        tau_min=33 * US,
        seed=args.seed,
        workload=Workload(
            message_rate_hz=args.message_rate_hz,
            snapshot_rate_hz=args.rate_hz,
        ),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, nargs="+", default=[125, 250, 500, 1000])
    parser.add_argument("--gateways", type=int, default=16)
    parser.add_argument("--externals", type=int, default=64)
    parser.add_argument("--snapshots", type=int, default=1000)
    parser.add_argument("--rate-hz", type=float, default=4000.0)
    parser.add_argument("--message-rate-hz", type=float, default=500.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--profile", action="store_true",
                        help="profile the largest size and print the top functions")
    parser.add_argument("--json", action="store_true", help="one JSON line per size")
    args = parser.parse_args()

    print(f"beaver, {args.gateways} gateways, {args.snapshots} snapshots at {args.rate_hz:g} Hz, "
          f"{args.message_rate_hz:g} msg/s per node")
    print(f"{'nodes':>6} {'wall_s':>8} {'cpu_s':>8} {'ratio':>6} {'per_x2':>6} {'events':>10} "
          f"{'events/s':>10} {'peak_MiB':>8} {'valid':>6} {'inconsistent_valid':>18}")
    previous = previous_nodes = None
    for nodes in args.nodes:
        profiler = cProfile.Profile() if args.profile and nodes == max(args.nodes) else None
        began, began_cpu = time.perf_counter(), time.process_time()
        if profiler:
            profiler.enable()
        summary = simulate(config(nodes, args)).summary
        if profiler:
            profiler.disable()
        wall, cpu = time.perf_counter() - began, time.process_time() - began_cpu
        growth = per_doubling = None
        if previous and previous_nodes and nodes != previous_nodes:
            growth = cpu / previous
            per_doubling = growth ** (1 / math.log2(nodes / previous_nodes))
        previous, previous_nodes = cpu, nodes
        peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        shown = [f"{value:6.2f}" if value else f"{'-':>6}" for value in (growth, per_doubling)]
        print(f"{nodes:>6} {wall:8.2f} {cpu:8.2f} {shown[0]} {shown[1]} {summary.events:>10,} "
              f"{summary.events / cpu:>10,.0f} {peak_mib:8.0f} {summary.valid:>6} "
              f"{summary.inconsistent_valid:>18}", flush=True)
        if args.json:
            print(json.dumps({
                "nodes": nodes, "gateways": args.gateways, "externals": args.externals,
                "snapshots": summary.snapshots, "wall_s": round(wall, 3), "cpu_s": round(cpu, 3),
                "cpu_ratio": growth, "cpu_ratio_per_doubling": per_doubling,
                "events": summary.events, "events_per_cpu_s": round(summary.events / cpu),
                "peak_rss_mib": round(peak_mib), "valid": summary.valid,
                "inconsistent_valid": summary.inconsistent_valid,
            }), flush=True)
        if profiler:
            pstats.Stats(profiler).sort_stats("tottime").print_stats(20)


if __name__ == "__main__":
    main()
