"""``beaver simulate``: run one simulated world and judge its snapshots with the oracle.

Prints a readable summary; with ``--json`` the last line on stdout is one
JSON object (see :class:`simulator.report.Summary`). Progress goes to
stderr when stderr is a terminal.

``--node-class FILE.py:CLASS`` runs another implementation of the in-group
node rule (a class built like :class:`beaver.node.PiggybackNode`) in a
piggybacking protocol (:attr:`simulator.WorldConfig.node_class`), and the
oracle judges the class exactly as it judges the core's node.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from beaver.protocols import PROTOCOLS
from beaver.snapshot_status import GlobalSnapshot
from cli.bounds import check
from cli.errors import UsageError
from cli.faults import add_fault_arguments, faults_from, render_faults
from cli.node_classes import node_class_for
from cli.progress import Progress
from simulator import US, Latencies, Summary, Workload, World, WorldConfig, simulate

NAME = "simulate"
HELP = "simulate a protocol in a data center with out-group traffic and judge every snapshot"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults, workload = WorldConfig(), Workload()
    parser.add_argument("--protocol", choices=sorted(PROTOCOLS), default=defaults.protocol)
    parser.add_argument("--nodes", type=int, default=defaults.nodes, help="in-group nodes")
    parser.add_argument("--gateways", type=int, default=defaults.gateways)
    parser.add_argument("--externals", type=int, default=defaults.externals,
                        help="out-group processes (clients and relays)")
    parser.add_argument("--relays", type=int, default=None,
                        help="how many out-group processes relay external causal chains "
                             "(default: half of --externals)")
    parser.add_argument("--no-external-chains", action="store_true",
                        help="no relays: out-group processes only send requests (--relays 0)")
    parser.add_argument("--snapshots", type=int, default=defaults.snapshots,
                        help="snapshots to start")
    parser.add_argument("--tau-min-us", type=float, default=defaults.tau_min / US,
                        help="the world's true shortest external causal chain (microseconds)")
    parser.add_argument("--controller-tau-min-us", type=float, default=None,
                        help="the bound the coordinator checks (default: --tau-min-us)")
    parser.add_argument("--rate-hz", type=float, default=workload.snapshot_rate_hz,
                        help="snapshot start rate")
    parser.add_argument("--window", type=int, default=defaults.window,
                        help="snapshots in flight at most (6-bit ids: 1..31)")
    parser.add_argument("--message-rate-hz", type=float, default=workload.message_rate_hz,
                        help="in-group messages per second per node")
    parser.add_argument("--request-rate-hz", type=float, default=workload.request_rate_hz,
                        help="requests per second per out-group client")
    parser.add_argument("--relay-share", type=float, default=workload.relay_share,
                        help="share of in-group nodes' messages sent to a relay (0..1)")
    parser.add_argument("--slow-gateway-share", type=float,
                        default=Latencies().gateway_leg.tail_probability,
                        help="share of gateway update legs that hit the slow tail (tens to "
                             "hundreds of microseconds)")
    parser.add_argument("--packet-lifetime-us", type=float,
                        default=defaults.packet_lifetime / US,
                        help="the longest a stamped packet stays in flight, as the coordinator "
                             "assumes: an id's wire code is reused only this long after the id "
                             "stopped being stamped (microseconds)")
    add_fault_arguments(parser)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--node-class", metavar="MODULE_PATH:CLASS",
                        help="run the in-group nodes of beaver or lai-yang as class CLASS of the "
                             "Python file MODULE_PATH, made like PiggybackNode(name, capture, "
                             "space)")
    parser.add_argument("--db", type=Path, default=None, metavar="FILE",
                        help="also store the run (snapshots, verdicts, event logs) in this "
                             "snapshot database, for beaver show and its --diagram")
    parser.add_argument("--json", action="store_true",
                        help="end with one JSON line of results")


MAX_WORK = 100_000_000
"""The most messages and protocol events (a notification and a report per node and an
update and an ack per gateway, per snapshot) a run may be expected to simulate: this
machine simulates roughly 100,000 events a second, so more would take hours."""

SIZE_LIMITS = {
    "nodes": (2, 20_000, "each in-group node keeps its state, counters and event log in "
                         "memory; 10,000 take minutes and GiBs"),
    "gateways": (0, 256, "every snapshot updates every gateway; the paper's largest has 16"),
    "externals": (0, 100_000, "each out-group process keeps its own event log"),
    "snapshots": (0, 1_000_000, "every snapshot is kept and judged in memory"),
}
RATE_LIMITS = {
    "rate_hz": ("--rate-hz", 1e9, "one start a nanosecond is past any coordinator"),
    "message_rate_hz": ("--message-rate-hz", 1e8, "ten nanoseconds between messages per node"),
    "request_rate_hz": ("--request-rate-hz", 1e8, "ten nanoseconds between requests per client"),
}
MICROSECONDS = {
    "tau_min_us": ("--tau-min-us", "simulated runs last milliseconds to seconds"),
    "controller_tau_min_us": ("--controller-tau-min-us",
                              "a bound beyond any run would make every snapshot valid"),
    "packet_lifetime_us": ("--packet-lifetime-us", "ids could not be reused within a run"),
}


def check_arguments(args: argparse.Namespace) -> None:
    """Every number in range and finite, and the run small enough to end (UsageError)."""
    for name, (low, high, why) in SIZE_LIMITS.items():
        check(f"--{name}", getattr(args, name), low, high, why)
    for name, (option, high, why) in RATE_LIMITS.items():
        check(option, getattr(args, name), 0, high, why, low_open=name == "rate_hz")
    for name, (option, why) in MICROSECONDS.items():
        check(option, getattr(args, name), 0, 1e7, why, low_open=True)
    check("--relay-share", args.relay_share, 0, 1)
    check("--slow-gateway-share", args.slow_gateway_share, 0, 1)
    clients = args.externals - (args.externals // 2 if args.relays is None else args.relays)
    traffic = args.message_rate_hz * args.nodes + args.request_rate_hz * max(clients, 0)
    duration = (args.snapshots / args.rate_hz
                + args.snapshots / max(args.window, 1) * args.packet_lifetime_us * US)
    work = traffic * duration + args.snapshots * (2 * args.nodes + 2 * args.gateways)
    if work > MAX_WORK:
        raise UsageError(
            f"this world would simulate about {work:.3g} messages and protocol events "
            f"({traffic:.3g} messages a second for about {duration:.3g} s), more than "
            f"{MAX_WORK:,} (hours of work here): lower the message or request rates, "
            f"--nodes or --snapshots, or raise --rate-hz")


def config_from(args: argparse.Namespace) -> WorldConfig:
    """The world the arguments describe, without its node class; UsageError for nonsense."""
    if args.no_external_chains and args.relays:
        raise UsageError("--no-external-chains contradicts --relays > 0")
    check_arguments(args)
    relays = 0 if args.no_external_chains else args.relays
    controller = args.controller_tau_min_us
    try:
        latencies = Latencies()
        latencies = replace(
            latencies,
            gateway_leg=replace(latencies.gateway_leg, tail_probability=args.slow_gateway_share),
        )
        return WorldConfig(
            protocol=args.protocol,
            nodes=args.nodes,
            gateways=args.gateways,
            externals=args.externals,
            relays=relays,
            snapshots=args.snapshots,
            tau_min=args.tau_min_us * US,
            controller_tau_min=None if controller is None else controller * US,
            window=args.window,
            packet_lifetime=args.packet_lifetime_us * US,
            seed=args.seed,
            workload=Workload(
                message_rate_hz=args.message_rate_hz,
                request_rate_hz=args.request_rate_hz,
                relay_share=args.relay_share,
                snapshot_rate_hz=args.rate_hz,
            ),
            latencies=latencies,
            faults=faults_from(args),
        )
    except ValueError as error:
        raise UsageError(str(error)) from None


def run(args: argparse.Namespace) -> int:
    config = config_from(args)
    if args.node_class is not None:  # imported only once every other option is checked
        config = replace(config, node_class=node_class_for(args.protocol, args.node_class))
    bar = Progress(config.snapshots, "snapshots started") if sys.stderr.isatty() else None
    progress = None if bar is None else _progress_of(bar)
    assembled: list[GlobalSnapshot] = []
    try:
        with bar or contextlib.nullcontext():
            outcome = simulate(config, progress, assembled.append if args.db else None)
    except (Exception, SystemExit) as error:
        if args.node_class is None:
            raise
        raise UsageError(f"--node-class {args.node_class} failed during the run: "
                         f"{type(error).__name__}: {' '.join(str(error).split())[:200]}") from None
    if args.node_class is not None:
        print(f"in-group nodes: {args.node_class}")
    print(render(outcome.summary))
    if args.db:
        print(f"stored as run {store_run(args.db, outcome, assembled)} in {args.db} "
              f"(beaver show --db {args.db})")
    if args.json:
        print(json.dumps(outcome.summary.as_dict(), sort_keys=True, allow_nan=False))
    return 0


def store_run(db: Path, outcome, assembled: list[GlobalSnapshot]) -> int:
    """Store the simulated run in ``db`` for ``beaver show`` (and its diagrams)."""
    from controller.coordinator.store import Store, StoreError
    from testbed.simulated import store_simulated

    try:
        with Store(db) as store:
            return store_simulated(store, outcome, assembled)
    except StoreError as error:
        raise UsageError(str(error)) from None


def _progress_of(bar: Progress) -> Callable[[World], None]:
    def show(world: World) -> None:
        bar.update(world.started, f"t={world.engine.now * 1e3:.3f} ms, "
                                  f"{world.engine.events_run:,} events")

    return show


def render(summary: Summary) -> str:
    """A few readable lines: the world, then the protocol's view next to the oracle's."""
    s = summary
    lines = [
        f"{s.protocol}: {s.nodes} nodes, {s.gateways} gateways, {s.externals} out-group "
        f"({s.relays} relays), tau_min {s.tau_min_us:g} us "
        f"(coordinator checks {s.controller_tau_min_us:g} us), seed {s.seed}",
        f"  snapshots {s.snapshots}: valid {s.valid}, complete {s.complete}",
        f"  oracle: inconsistent {s.inconsistent} (of them accepted as valid: "
        f"{s.inconsistent_valid}), channel state inexact {s.channel_inexact} (of complete)",
        f"  extra messages {s.extra_messages}, application messages {s.messages}",
    ]
    if s.snapshots < s.requested:
        lines.append(f"  stalled: only {s.snapshots} of {s.requested} snapshots started; one "
                     f"never finished, so the window of snapshots in flight stayed full")
    if s.overdue_packets:
        lines.append(f"  packet lifetime broken: {s.overdue_packets} stamped messages took longer "
                     f"than {s.packet_lifetime_us:g} us (message ids "
                     f"{', '.join(map(str, s.overdue_examples))}"
                     f"{', ...' if s.overdue_packets > len(s.overdue_examples) else ''})")
    if s.unstarted_adoptions:
        lines.append(f"  nodes adopted ids the coordinator had not started "
                     f"{s.unstarted_adoptions} times")
    if s.t1_t0_p50_us is not None:
        lines.append(
            f"  t1 - t0: p50 {s.t1_t0_p50_us:g} us, p99 {s.t1_t0_p99_us:g} us, "
            f"max {s.t1_t0_max_us:g} us; {s.slow_updates} at or above tau_min"
        )
    lines.extend(render_faults(s))
    lines.append(
        f"  simulated {s.simulated_s * 1e3:.3f} ms, {s.events:,} events, wall {s.wall_s:.2f} s"
    )
    return "\n".join(lines)

