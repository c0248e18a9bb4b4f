"""``beaver run``'s arguments and their checks, turned into emulation settings."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from beaver.protocols import PROTOCOLS
from cli.errors import UsageError
from controller.coordinator.store import DEFAULT_DB
from controller.gateways.rules import lost_share
from hosts.services.kind import Option
from hosts.services.registry import DEFAULT_SERVICE, SERVICES
from testbed.emulation import MAX_INGROUP, MAX_UPDATE_WINDOW, EmulationSettings

MAX_SNAPSHOTS = 100_000
MAX_RATE = 1000.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--service", choices=sorted(SERVICES), default=DEFAULT_SERVICE,
                        help=f"what the in-group runs (default {DEFAULT_SERVICE})")
    parser.add_argument("--gateways", type=int, default=2, help="gateways (1..8, default 2)")
    parser.add_argument("--ingroup", type=int, default=4,
                        help=f"in-group hosts running the service (1..{MAX_INGROUP}, default 4)")
    parser.add_argument("--snapshots", type=int, default=50, help="snapshots to take (default 50)")
    parser.add_argument("--rate", type=float, default=10.0,
                        help="snapshots started per second (default 10)")
    parser.add_argument("--window", type=int, default=1,
                        help="snapshots whose gateway update may be in flight at once, updates "
                             "pipelined (1: each waits for the previous one's acks; at most "
                             f"{MAX_UPDATE_WINDOW}, how far a gateway recognises ids ahead of "
                             "its own; default 1)")
    parser.add_argument("--wan-delay-ms", type=float, default=EmulationSettings.wan_delay * 1e3,
                        help="delay a relay adds to an external transfer (default "
                             f"{EmulationSettings.wan_delay * 1e3:g} ms: partners in another "
                             "data center, like the paper's inter-DC chains of ~39 ms)")
    parser.add_argument("--notify-spread-ms", type=float, default=100.0,
                        help="spread over which the coordinator's notifications of a snapshot "
                             "reach the in-group nodes (default 100 ms)")
    parser.add_argument("--protocol", choices=sorted(PROTOCOLS), default="beaver")
    parser.add_argument("--tau-min-us", type=float,
                        help="validity threshold (default: measured from relayed chains)")
    for option in service_options():
        parser.add_argument(option.flag, type=float, default=option.default, help=option.help)
    parser.add_argument("--data-loss", type=float, default=0.0, metavar="P",
                        help="share of in-group datagrams the fabric's switches drop, "
                             "0 <= P < 1, in steps of 1/32, rounded (default 0; the agents "
                             "retransmit)")
    parser.add_argument("--capture", action="store_true",
                        help="capture at the backends' ports and check every datagram that "
                             "crossed a gateway carries the id its gateway stamped then")
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
    fewest = getattr(args, "fewest_snapshots", 1)
    if not fewest <= args.snapshots <= MAX_SNAPSHOTS:
        problems.append(f"--snapshots must be in {fewest}..{MAX_SNAPSHOTS:,} (each is stored and "
                        f"judged; at the default rate that many take over an hour)")
    if not (math.isfinite(args.rate) and 0 < args.rate <= MAX_RATE):
        problems.append(f"--rate must be a positive number <= {MAX_RATE:g} (each start updates "
                        f"every gateway and notifies every agent; the summary says the rate "
                        f"reached)")
    if not 1 <= args.window <= MAX_UPDATE_WINDOW:
        problems.append(f"--window must be in 1..{MAX_UPDATE_WINDOW}")
    if not (math.isfinite(args.wan_delay_ms) and args.wan_delay_ms >= 0):
        problems.append("--wan-delay-ms must be >= 0")
    if not (math.isfinite(args.notify_spread_ms) and args.notify_spread_ms >= 0):
        problems.append("--notify-spread-ms must be >= 0")
    if args.tau_min_us is not None and not (math.isfinite(args.tau_min_us)
                                            and args.tau_min_us > 0):
        problems.append("--tau-min-us must be a positive number")
    kind = SERVICES[args.service]
    if kind.assumed_tau and args.tau_min_us is None and args.wan_delay_ms == 0:
        problems.append(f"--service {kind.name} with --wan-delay-ms 0 needs --tau-min-us")
    problems += [f"{option.flag} {option.problem}" for option in service_options()
                 if not option.valid(getattr(args, option.dest))]
    if not 0 <= args.data_loss < 1:
        problems.append("--data-loss must be in 0 <= P < 1")
    if problems:
        raise UsageError("; ".join(problems))
    return EmulationSettings(
        protocol=args.protocol, service=kind.name, gateways=args.gateways,
        ingroup=args.ingroup, wan_delay=args.wan_delay_ms / 1e3,
        workload_rate=getattr(args, kind.workload) if kind.workload else 0.0,
        client_rate=getattr(args, kind.clients) if kind.clients else 0.0,
        notify_spread=args.notify_spread_ms / 1e3,
        external_share=getattr(args, "external_share", EmulationSettings.external_share),
        update_window=args.window, data_loss=args.data_loss)


def service_options() -> list[Option]:
    """Every registered service's options, each flag once, in registration order."""
    options: dict[str, Option] = {}
    for kind in SERVICES.values():
        for option in kind.options:
            options.setdefault(option.flag, option)
    return list(options.values())


def run_parameters(args: argparse.Namespace) -> dict[str, Any]:
    """What the store keeps as the run's parameters: the run's shape, the service's options
    and what the service adds (the bank's initial total)."""
    kind = SERVICES[args.service]
    return {
        "gateways": args.gateways, "ingroup": args.ingroup, "snapshots": args.snapshots,
        "rate": args.rate, "window": args.window, "wan_delay_ms": args.wan_delay_ms,
        "notify_spread_ms": args.notify_spread_ms, "service": kind.name,
        "data_loss": args.data_loss, "data_lost_share": lost_share(args.data_loss),
        **{option.dest: getattr(args, option.dest) for option in kind.options},
        **kind.parameters(args.ingroup),
    }
