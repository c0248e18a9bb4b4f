"""Benchmark: wall time of the simulator (plus the oracle) as the in-group grows.

Runs Beaver with |G| = 16 gateways and 1,000 snapshots, for N = 125, 250,
500 and 1,000 in-group nodes (or the sizes given), and prints wall and CPU
time, events per CPU second and the ratio of CPU time to the previous size
(CPU time is steadier than wall time on a busy machine). Each node sends
``--message-rate-hz`` in-group messages per second, so traffic and
notifications both grow linearly with N: the ratios should stay near 2.

    .venv/bin/python benchmarks/bench_sim.py            # the full series
    .venv/bin/python benchmarks/bench_sim.py --nodes 1000 --profile
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
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
    args = parser.parse_args()

    print(f"beaver, {args.gateways} gateways, {args.snapshots} snapshots at {args.rate_hz:g} Hz, "
          f"{args.message_rate_hz:g} msg/s per node")
    print(f"{'nodes':>6} {'wall_s':>8} {'cpu_s':>8} {'ratio':>6} {'events':>10} "
          f"{'events/s':>10} {'valid':>6} {'inconsistent_valid':>18}")
    previous = None
    for nodes in args.nodes:
        profiler = cProfile.Profile() if args.profile and nodes == max(args.nodes) else None
        began, began_cpu = time.perf_counter(), time.process_time()
        if profiler:
            profiler.enable()
        summary = simulate(config(nodes, args)).summary
        if profiler:
            profiler.disable()
        wall, cpu = time.perf_counter() - began, time.process_time() - began_cpu
        ratio = f"{cpu / previous:6.2f}" if previous else f"{'-':>6}"
        previous = cpu
        print(f"{nodes:>6} {wall:8.2f} {cpu:8.2f} {ratio} {summary.events:>10,} "
              f"{summary.events / cpu:>10,.0f} {summary.valid:>6} "
              f"{summary.inconsistent_valid:>18}", flush=True)
        if profiler:
            pstats.Stats(profiler).sort_stats("tottime").print_stats(20)


if __name__ == "__main__":
    main()
