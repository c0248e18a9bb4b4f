"""``beaver run``'s arguments and their checks, turned into emulation settings."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from beaver.protocols import PROTOCOLS
from cli.errors import UsageError
from controller.coordinator.store import DEFAULT_DB
from testbed.emulation import MAX_INGROUP, EmulationSettings


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


def run_parameters(args: argparse.Namespace, settings: EmulationSettings) -> dict[str, Any]:
    """What the store keeps as the run's parameters."""
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
    return parameters
