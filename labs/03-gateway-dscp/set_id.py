"""Set every gateway's snapshot id through the controller's control interface.

    .venv/bin/python labs/03-gateway-dscp/set_id.py --secret-file SECRET CONTROL_PORT ID

CONTROL_PORT is the ``control 127.0.0.1:<port>`` and SECRET the ``secret:``
file the data center printed when it started. Prints, per gateway, when
the controller sent the flow-mod and when the barrier reply came back (the
controller's clock), and t1 - t0.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from controller.gateways.client import ControllerError, GatewayClient
from topologies.secret import RunSecret


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="set every gateway's snapshot id")
    parser.add_argument("control_port", type=int, help="the controller's control port")
    parser.add_argument("snapshot_id", type=int, help="the id the gateways stamp from now on")
    parser.add_argument("--secret-file", type=Path, help="the run's secret (signs the request)")
    args = parser.parse_args(argv)
    try:
        secret = RunSecret.load(args.secret_file) if args.secret_file else None
    except (OSError, ValueError) as error:
        print(f"set_id: {error}", file=sys.stderr)
        return 2
    try:
        with GatewayClient(args.control_port, secret=secret) as client:
            result = client.set_id(args.snapshot_id)
            ids = client.ids()
    except ControllerError as error:
        print(f"set_id: {error}", file=sys.stderr)
        return 1
    for name, timing in sorted(result.gateways.items()):
        if timing.failure:
            print(f"{name}: failed: {timing.failure}")
        else:
            took = (timing.acked_at - timing.sent_at) * 1e3
            print(f"{name}: id {ids[name]}, flow-mod + barrier {took:.3f} ms")
    if result.complete and result.first_sent is not None and result.last_acked is not None:
        spread = (result.last_acked - result.first_sent) * 1e3
        print(f"id {result.snapshot_id} complete: t1 - t0 = {spread:.3f} ms")
    else:
        print(f"id {result.snapshot_id} incomplete: {', '.join(sorted(result.failed))} failed")
    return 0 if result.complete else 1


if __name__ == "__main__":
    sys.exit(main())
