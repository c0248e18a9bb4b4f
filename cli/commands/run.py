"""``beaver run``: take snapshots of a service running in an emulated data center.

It builds the data center (Mininet + the os-ken gateway controller), starts
the coordinator service, the relays (external partner banks, with the WAN
delay) and one agent per in-group host
(:class:`testbed.emulation.Emulation`); learns tau_min (given,
or the shortest relayed chain the agents measured before the first
snapshot); takes the snapshots at the given rate with a progress line on
stderr; stops the hosts and has the ground-truth oracle judge every
snapshot from the agents' and relays' event logs (:mod:`testbed.truth`;
the verdicts are stored too); and prints a summary: accepted (valid) and
complete snapshots, bank-invariant violations among accepted complete
snapshots, the oracle's causally inconsistent snapshots (among all, among
accepted) and inexact channel states (among complete), t1 - t0 p50 and
p99, tau_min and its source. Every snapshot is stored in the SQLite
database (``beaver show`` reads it). Everything started is removed on exit,
also on Ctrl-C or an error. With ``--json`` the last stdout line is one JSON
object.

``--service kv`` runs the replicated key-value store (:mod:`hosts.services.kv`)
instead of the bank, loaded by the plan's external clients
(:mod:`hosts.client`, ``--client-rate`` requests per second each) through
the VIP; the agents flush replicated writes ``--replication-rate`` times a
second. The relays still run but carry nothing: the store never sends to
them. The clients are open loop (no request depends on a reply), so the run
has no external causal chain: tau_min cannot be measured and, unless
``--tau-min-us`` is given, is taken to be the emulated WAN delay. The bank
invariant does not apply (the summary says so; in JSON
``invariant_violations`` is null). The oracle judges kv runs the same way:
the replication datagrams between backends are in the agents' event logs;
the clients keep no log and their requests carry no message id, so a
request's receipt is not an event, and a reply is a send nobody in the logs
receives (a dropped message for the oracle).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

from beaver.protocols import PROTOCOLS
from cli.errors import UsageError
from controller.coordinator.store import DEFAULT_DB, Store, StoreError
from hosts.services.bank import check_invariant
from testbed.emulation import MAX_INGROUP, Emulation, EmulationSettings
from testbed.network import ovs_problem
from testbed.truth import TruthLogError, judge_run

NAME = "run"
HELP = "take snapshots of a service (bank or key-value store) in an emulated data center"

KV_DEFAULT_TAU_SOURCE = ("assumed: the WAN delay (--wan-delay-ms); the key-value clients are "
                         "open loop, so there is no external chain to measure")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--service", choices=("bank", "kv"), default="bank",
                        help="what the in-group runs (default bank)")
    parser.add_argument("--gateways", type=int, default=2, help="gateways (1..8, default 2)")
    parser.add_argument("--ingroup", type=int, default=4,
                        help=f"in-group hosts running the service (1..{MAX_INGROUP}, default 4)")
    parser.add_argument("--snapshots", type=int, default=50, help="snapshots to take (default 50)")
    parser.add_argument("--rate", type=float, default=10.0,
                        help="snapshots started per second (default 10)")
    parser.add_argument("--wan-delay-ms", type=float, default=5.0,
                        help="delay a relay adds to an external transfer (default 5 ms)")
    parser.add_argument("--notify-spread-ms", type=float, default=100.0,
                        help="spread over which the coordinator's notifications of a snapshot "
                             "reach the in-group nodes (default 100 ms)")
    parser.add_argument("--protocol", choices=sorted(PROTOCOLS), default="beaver")
    parser.add_argument("--tau-min-us", type=float,
                        help="validity threshold (default: measured from relayed chains)")
    parser.add_argument("--bank-rate", type=float, default=20.0,
                        help="bank transfers per second per host (default 20)")
    parser.add_argument("--external-share", type=float, default=0.5,
                        help="share of transfers paid through the external partner (relay), "
                             "each an external causal chain (default 0.5)")
    parser.add_argument("--client-rate", type=float, default=50.0,
                        help="kv: requests per second of each external client (default 50)")
    parser.add_argument("--replication-rate", type=float, default=20.0,
                        help="kv: replication flushes per second per host (default 20)")
    parser.add_argument("--db", type=Path, default=DEFAULT_DB,
                        help=f"snapshot database (default {DEFAULT_DB})")
    parser.add_argument("--json", action="store_true",
                        help="end with one line of JSON with the summary")


def settings_of(args: argparse.Namespace) -> EmulationSettings:
    problems = []
    if not 1 <= args.gateways <= 8:
        problems.append("--gateways must be in 1..8")
    if not 1 <= args.ingroup <= MAX_INGROUP or (args.ingroup > 8 and args.ingroup % 2):
        problems.append(f"--ingroup must be in 1..{MAX_INGROUP} (even above 8)")
    if args.snapshots < 1:
        problems.append("--snapshots must be at least 1")
    if not (math.isfinite(args.rate) and args.rate > 0):
        problems.append("--rate must be a positive number")
    if not (math.isfinite(args.wan_delay_ms) and args.wan_delay_ms >= 0):
        problems.append("--wan-delay-ms must be >= 0")
    if not (math.isfinite(args.notify_spread_ms) and args.notify_spread_ms >= 0):
        problems.append("--notify-spread-ms must be >= 0")
    if args.tau_min_us is not None and not (math.isfinite(args.tau_min_us)
                                            and args.tau_min_us > 0):
        problems.append("--tau-min-us must be a positive number")
    if not (math.isfinite(args.bank_rate) and args.bank_rate > 0):
        problems.append("--bank-rate must be a positive number")
    if not 0 <= args.external_share <= 1:
        problems.append("--external-share must be in 0..1")
    if args.service == "kv" and args.tau_min_us is None and args.wan_delay_ms == 0:
        problems.append("--service kv with --wan-delay-ms 0 needs --tau-min-us")
    if not (math.isfinite(args.client_rate) and args.client_rate > 0):
        problems.append("--client-rate must be a positive number")
    if not (math.isfinite(args.replication_rate) and args.replication_rate >= 0):
        problems.append("--replication-rate must be >= 0")
    if problems:
        raise UsageError("; ".join(problems))
    kv = args.service == "kv"
    return EmulationSettings(protocol=args.protocol, service=args.service,
                             gateways=args.gateways,
                             ingroup=args.ingroup, wan_delay=args.wan_delay_ms / 1e3,
                             bank_rate=args.replication_rate if kv else args.bank_rate,
                             client_rate=args.client_rate,
                             notify_spread=args.notify_spread_ms / 1e3,
                             external_share=args.external_share)


def run(args: argparse.Namespace) -> int:
    settings = settings_of(args)
    problem = ovs_problem()
    if problem:
        print(f"beaver run: the emulated data center {problem}; run as root after "
              "./setup.sh (which starts Open vSwitch)", file=sys.stderr)
        return 1
    try:
        store = Store(args.db)
    except StoreError as error:
        print(f"beaver run: {error}", file=sys.stderr)
        return 1
    parameters: dict[str, Any] = {
        "gateways": args.gateways, "ingroup": args.ingroup, "snapshots": args.snapshots,
        "rate": args.rate, "wan_delay_ms": args.wan_delay_ms,
        "notify_spread_ms": args.notify_spread_ms, "service": args.service,
    }
    if args.service == "bank":
        parameters |= {"bank_rate": args.bank_rate, "external_share": args.external_share,
                       "initial_total": settings.initial_total()}
    else:
        parameters |= {"client_rate": args.client_rate,
                       "replication_rate": args.replication_rate}
    with store:
        run_id = store.new_run(args.protocol, parameters, args.tau_min_us, "pending")
        try:
            summary = take(settings, store, run_id, args)
        except (TimeoutError, RuntimeError, ValueError) as error:
            print(f"beaver run: {error}", file=sys.stderr)
            return 1
    print(format_summary(summary))
    if args.json:
        print(json.dumps(summary))
    return 0


def take(settings: EmulationSettings, store: Store, run_id: int,
         args: argparse.Namespace) -> dict[str, Any]:
    on_terminal = sys.stderr.isatty()
    step = max(1, args.snapshots // 10)
    printed = set()

    def progress(started: int, stored: int) -> None:
        line = f"snapshots: {started}/{args.snapshots} started, {stored} stored"
        if on_terminal:
            print(f"\r{line}", end="", file=sys.stderr, flush=True)
        elif stored % step == 0 and stored not in printed:
            printed.add(stored)
            print(line, file=sys.stderr, flush=True)

    print(f"beaver run: building the data center ({settings.ingroup} in-group hosts running "
          f"{settings.service}, {settings.gateways} gateways) ...", file=sys.stderr,
          flush=True)
    with Emulation(settings, store, run_id) as emulation:
        assert emulation.service is not None
        try:
            if settings.service == "kv" and args.tau_min_us is None:
                tau, _ = emulation.tau_min(args.wan_delay_ms * 1e3)
                source = KV_DEFAULT_TAU_SOURCE
            else:
                tau, source = emulation.tau_min(args.tau_min_us)
        except TimeoutError:
            if PROTOCOLS[args.protocol].uses_gateways:
                raise
            tau, source = math.inf, "not measured: no relayed chain"
        if not PROTOCOLS[args.protocol].uses_gateways:
            source += f"; {args.protocol} has no gateways, so it does not use it"
        store.set_tau_min(run_id, tau * 1e6 if math.isfinite(tau) else None, source)
        print(f"beaver run: tau_min {tau * 1e6:.0f} us, {source}", file=sys.stderr)
        measured = args.tau_min_us is None and settings.service == "bank"
        if measured and PROTOCOLS[args.protocol].uses_gateways:
            emulation.service.follow_chains()
        timeout = args.snapshots / args.rate + 30
        result = emulation.service.take(args.snapshots, args.rate, timeout, progress)
        if on_terminal:
            print(file=sys.stderr)
        if result.stalled:
            print(f"beaver run: {result.stalled}", file=sys.stderr)
        emulation.stop_hosts()
        clients = emulation.client_summaries()
        record_verdicts(emulation.truth_logs(), store, run_id)
    return summarize(store, run_id, args.db) | {"clients": clients}


def record_verdicts(logs: list[Path], store: Store, run_id: int) -> None:
    """Store the oracle's verdicts on the run; logs it cannot judge leave none (and say why)."""
    try:
        store.set_verdicts(run_id, judge_run(logs, store, run_id))
    except TruthLogError as error:
        print(f"beaver run: the oracle did not judge this run: {error}", file=sys.stderr)


def percentile(values: list[float], q: float) -> float | None:
    """The q-quantile (0..1) by the nearest-rank method; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def summarize(store: Store, run_id: int, db: Path) -> dict[str, Any]:
    """The run's summary from what is stored (the same numbers ``beaver show`` gives).

    The bank invariant applies to bank runs only: for others ``invariant_violations`` is
    None and ``violating_snapshots`` empty."""
    run_row = store.run(run_id)
    service = run_row["parameters"].get("service", "bank")
    rows = store.snapshot_rows(run_id)
    accepted = [r for r in rows if r["valid"] and r["complete"]]
    violating = []
    for row in accepted if service == "bank" else []:
        snapshot = store.snapshot(run_id, row["snapshot_id"])
        states = {s.node: s.state for s in snapshot.states}
        if check_invariant(states, snapshot.in_flight, run_row["parameters"]["initial_total"]):
            violating.append(row["snapshot_id"])
    verdicts = store.verdicts(run_id)
    judged = [r for r in rows if r["snapshot_id"] in verdicts]
    inconsistent = [r["snapshot_id"] for r in judged
                    if not verdicts[r["snapshot_id"]]["consistent"]]
    inexact = [r["snapshot_id"] for r in judged
               if r["complete"] and not verdicts[r["snapshot_id"]]["channel_exact"]]

    def oracle(count: int) -> int | None:
        return count if verdicts else None

    updates = [r["update_us"] for r in rows if r["update_us"] is not None]
    counters = store.node_counters(run_id)
    chains = [c["chain_min_us"] for c in counters.values() if c["chain_min_us"] is not None]
    return {
        "run": run_id, "protocol": run_row["protocol"], "service": service,
        "snapshots": len(rows),
        "valid": sum(r["valid"] for r in rows), "complete": sum(r["complete"] for r in rows),
        "accepted": len(accepted),
        "invariant_violations": len(violating) if service == "bank" else None,
        "violating_snapshots": violating,
        "judged": len(judged), "inconsistent": oracle(len(inconsistent)),
        "inconsistent_valid": oracle(sum(r["snapshot_id"] in set(inconsistent) for r in accepted)),
        "channel_inexact": oracle(len(inexact)), "inconsistent_snapshots": inconsistent,
        "t1_t0_p50_us": percentile(updates, 0.5), "t1_t0_p99_us": percentile(updates, 0.99),
        "tau_min_us": run_row["tau_min_us"], "tau_source": run_row["tau_source"],
        "shortest_chain_us": min(chains, default=None),
        "rejected_reports": store.rejections(run_id), "db": str(db),
    }


def format_summary(summary: dict[str, Any]) -> str:
    def us(value: float | None) -> str:
        return "-" if value is None else f"{value:.0f} us"

    return "\n".join([
        f"run {summary['run']} ({summary['protocol']}, {summary.get('service', 'bank')}): "
        f"{summary['snapshots']} snapshots, "
        f"{summary['valid']} valid, {summary['complete']} complete, "
        f"{summary['accepted']} accepted (valid and complete)",
        invariant_line(summary),
        *client_lines(summary.get("clients", [])),
        oracle_line(summary),
        f"t1 - t0: p50 {us(summary['t1_t0_p50_us'])}, p99 {us(summary['t1_t0_p99_us'])}; "
        f"tau_min {us(summary['tau_min_us'])} ({summary['tau_source']})",
        f"rejected agent reports: {summary['rejected_reports'] or 'none'}; "
        f"stored in {summary['db']} (beaver show --db {summary['db']} --run {summary['run']})",
    ])


def invariant_line(summary: dict[str, Any]) -> str:
    if summary["invariant_violations"] is None:
        return (f"bank invariant: not applicable (the service is "
                f"{summary.get('service', 'bank')}, not the bank)")
    return (f"bank invariant violations among accepted snapshots: "
            f"{summary['invariant_violations']}"
            + (f" (snapshots {summary['violating_snapshots']})"
               if summary["violating_snapshots"] else ""))


def client_lines(clients: list[dict[str, Any]]) -> list[str]:
    """One line per external key-value client: its requests, replies and latency."""
    return [f"kv client {n}: {c['sent']} requests, {c['replies']} replies "
            f"({c['from_vip']} from the VIP), {c['lost']} unanswered; latency p50 "
            f"{c['latency_ms']['p50']} ms, p99 {c['latency_ms']['p99']} ms"
            for n, c in enumerate(clients, start=1)]


def oracle_line(summary: dict[str, Any]) -> str:
    if summary["inconsistent"] is None:
        return "oracle (ground truth from the hosts' logs): not judged"
    return (f"oracle (ground truth from the hosts' logs): {summary['inconsistent']} of "
            f"{summary['judged']} snapshots causally inconsistent, "
            f"{summary['inconsistent_valid']} of {summary['accepted']} accepted; channel state "
            f"inexact in {summary['channel_inexact']} of {summary['complete']} complete")
