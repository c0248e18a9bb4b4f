"""``python -m controller.gateways``: run the os-ken gateway controller for one address plan.

    python -m controller.gateways --plan plan.json --ofp-tcp-listen-port 6653 --control-port 6700

Switches connect on the OpenFlow port (127.0.0.1); the control interface
(:mod:`controller.gateways.control`) listens on the control port. With
``--secret-file`` (the run's secret, :mod:`topologies.secret`) every control
request must carry its HMAC; without, the interface is open to every local
user (a warning says so).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from beaver.ids import IPV4_WINDOW, ipv4_space
from controller.gateways.datapath import SYNC_MODES, check_sync
from controller.gateways.rules import dropped_entropies
from topologies.addressing import AddressPlan
from topologies.secret import RunSecret


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m controller.gateways", description="Run the os-ken gateway controller."
    )
    parser.add_argument("--plan", type=Path, required=True, help="address plan JSON file")
    parser.add_argument("--ofp-tcp-listen-port", type=int, required=True)
    parser.add_argument("--control-port", type=int, required=True)
    parser.add_argument("--listen-host", default="127.0.0.1")
    parser.add_argument("--update-timeout", type=float, default=2.0,
                        help="seconds to wait for a gateway's barrier reply")
    parser.add_argument("--window", type=int, default=IPV4_WINDOW,
                        help="snapshot ids in flight (the agents' and coordinator's window)")
    parser.add_argument("--secret-file", type=Path,
                        help="the run's secret: control requests must carry its HMAC")
    parser.add_argument("--datapath-control", action="append", default=[],
                        metavar="GATEWAY=SOCKET",
                        help="unixctl socket of the ovs-vswitchd running GATEWAY: an update is "
                             "acknowledged once that datapath's flows follow it")
    parser.add_argument("--data-loss", type=float, default=0.0,
                        help="share of in-group datagrams the leaves drop (0 <= P < 1)")
    parser.add_argument("--datapath-sync", choices=SYNC_MODES, default=SYNC_MODES[0],
                        help="after a gateway's barrier: purge its datapath flow cache, or "
                        "watch its cached datapath flows follow the new id")
    parser.add_argument("--log-level", default="INFO")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    try:
        AddressPlan.from_json(args.plan.read_text())
    except (OSError, ValueError, KeyError, TypeError) as error:
        print(f"python -m controller.gateways: cannot read plan {args.plan}: {error}",
              file=sys.stderr)
        return 2
    try:
        space = ipv4_space(args.window)
        secret = RunSecret.load(args.secret_file) if args.secret_file else None
        dropped_entropies(args.data_loss)
    except (OSError, ValueError) as error:
        print(f"python -m controller.gateways: {error}", file=sys.stderr)
        return 2
    controls = {}
    for option in args.datapath_control:
        gateway, separator, path = option.partition("=")
        if not separator or not gateway or not path:
            print(f"python -m controller.gateways: --datapath-control wants GATEWAY=SOCKET, "
                  f"got {option!r}", file=sys.stderr)
            return 2
        controls[gateway] = Path(path)
    try:
        check_sync(args.datapath_sync, len(set(controls.values())) < len(controls))
    except ValueError as error:
        print(f"python -m controller.gateways: {error}", file=sys.stderr)
        return 2
    logging.basicConfig(level=args.log_level, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    from os_ken import cfg
    from os_ken.base.app_manager import AppManager

    from controller.gateways.app import AppSettings, GatewayApp

    if secret is None:
        logging.getLogger("beaver.controller.gateways").warning(
            "no --secret-file: the control interface accepts any local user's requests")
    GatewayApp.settings = AppSettings(args.plan, args.listen_host, args.control_port,
                                      args.update_timeout, space, secret,
                                      (args.listen_host, args.ofp_tcp_listen_port), controls,
                                      data_loss=args.data_loss,
                                      datapath_sync=args.datapath_sync)
    cfg.CONF(args=["--ofp-tcp-listen-port", str(args.ofp_tcp_listen_port),
                   "--ofp-listen-host", args.listen_host], project="os_ken")
    try:
        AppManager.run_apps(["controller.gateways.app"])
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
