"""One in-group node: ``python -m hosts.agent --plan PLAN.json --node NAME ...``.

The agent reads the address plan, binds the node's data socket on its DIP
(:data:`SERVICE_PORT`), connects to the coordinator over the management
network (retrying until ``--connect-timeout``) and says hello. Then it prints
one line on stdout, ``ready {json}``, and runs the service and its workload
under the snapshot runtime until the coordinator says ``stop``, hangs up, or
the process gets SIGTERM/SIGINT; it then reports its final counters, prints
``stopped {json}`` and exits 0. Bad arguments: one line on stderr, exit 2;
no coordinator: one line, exit 1.

In-group peers are every in-group host of the plan unless ``--peers`` names
them; a bank's shards are the peers that back the same plan service. Bank
transfers through the out-group go to the plan's relays at
:data:`RELAY_PORT`. ``--truth-log PATH`` writes the node's ground-truth
events there (:mod:`hosts.truth`); ``--secret-file PATH`` gives the run's
secret (:mod:`topologies.secret`), against which the bank checks the
relays' HMACs on credits from the out-group.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import sys
import time
from dataclasses import asdict
from pathlib import Path

from beaver.ids import IPV4_WINDOW, ipv4_space
from beaver.protocols import PROTOCOLS, protocol
from hosts import link, wire
from hosts.loop import stop_on_signals
from hosts.runtime import Runtime
from hosts.services import Service
from hosts.services.bank import BankConfig
from hosts.services.kind import NodeSetup
from hosts.services.registry import SERVICES
from hosts.truth import INGROUP, TruthLog
from topologies.addressing import AddressPlan
from topologies.secret import RunSecret

SERVICE_PORT = 9000
"""UDP port of every service, on DIPs and VIPs alike."""
RELAY_PORT = 9100
"""UDP port relays listen on."""


class BadArguments(ValueError):
    """Input the agent cannot run with (one line, exit 2)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m hosts.agent",
        description="run one in-group node: the snapshot runtime and its service")
    parser.add_argument("--plan", required=True, type=Path, help="address plan (JSON)")
    parser.add_argument("--node", required=True, help="in-group host name in the plan")
    parser.add_argument("--service", required=True, choices=sorted(SERVICES))
    parser.add_argument("--protocol", required=True, choices=sorted(PROTOCOLS))
    parser.add_argument("--coordinator", required=True, help="HOST:PORT of the coordinator")
    parser.add_argument("--rate", type=float, default=20.0,
                        help="the service's workload per second (bank transfers, kv "
                             "replication flushes)")
    parser.add_argument("--peers", help="comma-separated in-group nodes (default: all in the plan)")
    parser.add_argument("--port", type=int, default=SERVICE_PORT, help="data port")
    parser.add_argument("--relay-port", type=int, default=RELAY_PORT)
    parser.add_argument("--external-share", type=float, default=BankConfig.external_share,
                        help="share of the workload sent through a relay (bank transfers)")
    parser.add_argument("--window", type=int, default=IPV4_WINDOW,
                        help="snapshots in flight (must match the coordinator)")
    parser.add_argument("--seed", type=int, help="workload seed (default: from the node name)")
    parser.add_argument("--connect-timeout", type=float, default=10.0)
    parser.add_argument("--report-interval", type=float, default=1.0,
                        help="seconds between counters reports")
    parser.add_argument("--secret-file", type=Path, required=True,
                        help="the run's secret: every message to the coordinator carries its "
                             "HMAC, and the bank credits the out-group only for credits a "
                             "relay sealed with it")
    parser.add_argument("--truth-log", type=Path,
                        help="write ground-truth events (sends, receives, captures) here")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO,
        format=f"%(asctime)s agent {args.node} %(levelname)s %(message)s",
    )
    try:
        return serve(args)
    except BadArguments as error:
        print(f"hosts.agent: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"hosts.agent {args.node}: {error}", file=sys.stderr)
        return 1


def serve(args: argparse.Namespace) -> int:
    plan = load_plan(args.plan)
    try:
        host = plan.host(args.node)
        coordinator = wire.parse_address(args.coordinator)
        space = ipv4_space(args.window)
        secret = RunSecret.load(args.secret_file)
    except (KeyError, ValueError) as error:
        raise BadArguments(str(error).strip("'\"")) from None
    if (args.rate < 0 or not 0 <= args.external_share <= 1 or not 0 < args.port < 65536
            or args.report_interval <= 0 or args.connect_timeout < 0):
        raise BadArguments("--rate must be >= 0, --external-share in 0..1, --port in 1..65535, "
                           "--report-interval > 0, --connect-timeout >= 0")
    names = args.peers.split(",") if args.peers else [h.name for h in plan.hosts]
    unknown = sorted(set(names) - {h.name for h in plan.hosts})
    if unknown:
        raise BadArguments(f"--peers names hosts not in the plan: {', '.join(unknown)}")
    peers = {name: (plan.host(name).dip, args.port) for name in {*names, host.name}}

    data = wire.open_udp((host.dip, args.port))
    try:
        management = link.connect(coordinator, host.name, args.protocol, secret,
                                   timeout=args.connect_timeout)
    except ConnectionError:
        data.close()
        raise
    try:
        truth = TruthLog(args.truth_log, host.name, INGROUP) if args.truth_log else None
    except OSError:
        management.close()
        data.close()
        raise
    now = time.monotonic()
    rng = random.Random(args.seed if args.seed is not None else host.name)
    service = make_service(args, plan, host.name, list(peers), now, rng, secret)
    rules = protocol(args.protocol)
    node = rules.node(host.name, service.capture, peers=peers, space=space)
    runtime = Runtime(node, service, data, peers, management,
                      gateways_stamp=rules.uses_gateways, report_interval=args.report_interval,
                      truth=truth)
    ready = {"node": host.name, "data": f"{host.dip}:{args.port}", "service": args.service,
             "protocol": args.protocol, "peers": sorted(peers)}
    try:
        with stop_on_signals(runtime):
            print("ready", json.dumps(ready), flush=True)
            runtime.run()
    finally:
        management.close()
        data.close()
        if truth is not None:
            truth.close()
    print("stopped", json.dumps(asdict(runtime.counters)), flush=True)
    return 0


def load_plan(path: Path) -> AddressPlan:
    try:
        return AddressPlan.from_json(path.read_text())
    except OSError as error:
        raise BadArguments(f"cannot read plan {path}: {error.strerror}") from None
    except (ValueError, KeyError, TypeError) as error:
        raise BadArguments(f"{path} is not an address plan: {error}") from None


def make_service(
    args: argparse.Namespace, plan: AddressPlan, name: str, peers: list[str], now: float,
    rng: random.Random, run_secret: RunSecret | None,
) -> Service:
    """The node's service, as its registered kind builds it (:mod:`hosts.services.registry`)."""
    shards = [peer for peer in peers if plan.host(peer).service == plan.host(name).service]
    relays = [(x.ip, args.relay_port) for x in plan.externals if x.role == "relay"]
    return SERVICES[args.service].build(NodeSetup(
        name, peers=tuple(peers), shards=tuple(shards), relays=tuple(relays), rate=args.rate,
        start=now, rng=rng, external_share=args.external_share, secret=run_secret))


if __name__ == "__main__":
    sys.exit(main())
