"""``beaver cli``: the emulated data center at the Mininet prompt, with snapshot commands.

It builds what ``beaver run`` builds (same options), chooses tau_min the
same way, takes ``--snapshots`` snapshots first (default 0), then hands the
terminal to Mininet's CLI with the testbed's commands added
(:mod:`cli.console`: ``snapshot [N]``, ``snapshots``, ``show ID``,
``gateways``, ``restore ID``). Every snapshot is stored in ``--db``. On
``exit`` (or end of input) it stops the hosts, has the oracle judge the
run, prints ``beaver run``'s summary and removes everything it created, as
``beaver run`` does, also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from cli.commands.run import emulate, take
from cli.runs.arguments import add_arguments as add_run_arguments

NAME = "cli"
HELP = ("the emulated data center at the Mininet prompt, plus snapshot, snapshots, show, "
        "gateways and restore")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_run_arguments(parser)
    parser.set_defaults(snapshots=0, fewest_snapshots=0)


def run(args: argparse.Namespace) -> int:
    return emulate(args, session, NAME)


def session(emulation, args: argparse.Namespace) -> dict[str, Any]:
    from mininet.log import setLogLevel

    from cli.console import SnapshotCLI

    setLogLevel("output")
    before = take(emulation, args) if args.snapshots else {}
    print("beaver cli: type help for Mininet's commands; snapshot [N], snapshots, show ID, "
          "gateways and restore ID are the testbed's", file=sys.stderr, flush=True)
    prompt = SnapshotCLI(emulation, emulation.store, emulation.run, args.rate)
    setLogLevel("warning")
    return {
        "given_up_snapshots": before.get("given_up_snapshots", []) + prompt.given_up,
        "given_up_reason": prompt.stalled or before.get("given_up_reason"),
    }
