"""``beaver clean``: remove what runs killed without cleaning up (SIGKILL) left behind.

Every emulated data center keeps a record of exactly what it created while
it runs (:mod:`topologies.record`; in ``/run/beaver`` or
``$BEAVER_STATE_DIR``). For each record whose owning process is dead, this
command kills the recorded processes that are still the same processes,
deletes the recorded Open vSwitch bridges and root-namespace interfaces that
are still the recorded ones, removes the recorded temporary directories,
prints what it removed, and deletes the record
(:func:`topologies.leftovers.clean`). Records of live runs are left alone
and reported; claims of names (:mod:`topologies.claims`) whose owner is dead
are given back. Nothing is chosen by name pattern. ``--dry-run`` only says
what it would remove. Exit status 1 if something could not be removed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from topologies.claims import remove_dead_claims
from topologies.leftovers import Outcome, clean
from topologies.record import STATE_DIR_VARIABLE, state_dir

NAME = "clean"
HELP = "remove the bridges, processes and files of runs that died without cleaning up"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dry-run", action="store_true",
                        help="only print what would be removed")
    parser.add_argument("--state-dir", type=Path,
                        help=f"where runs keep their records (default ${STATE_DIR_VARIABLE}, "
                             "else /run/beaver)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    if os.geteuid() != 0:
        print("beaver clean: needs root (it kills processes and deletes Open vSwitch bridges "
              "of dead runs)", file=sys.stderr)
        return 1
    directory = args.state_dir or state_dir()
    outcomes, problems = clean(directory, dry_run=args.dry_run)
    released = [] if args.dry_run else remove_dead_claims(directory)
    failed = bool(problems) or any(o.error for o in outcomes)
    if args.json:
        print(json.dumps({"state_dir": str(directory), "dry_run": args.dry_run,
                          "runs": [o.to_dict() for o in outcomes],
                          "unreadable": problems, "released_names": released}))
    else:
        for problem in problems:
            print(f"unreadable record, left alone: {problem}")
        for outcome in outcomes:
            print(describe(outcome, args.dry_run))
        if released:
            print("names of dead runs given back: " + " ".join(released))
        if not outcomes and not problems:
            print(f"no run records in {directory}")
    return 1 if failed else 0


def describe(outcome: Outcome, dry_run: bool) -> str:
    """A few lines on one record: left alone (live owner), or what was removed."""
    if outcome.owner_alive:
        return f"{outcome.record}: owner {outcome.owner} is running, left alone"
    verb = "would remove" if dry_run else "removed"
    removed = outcome.removed
    lines = [f"{outcome.record}: owner {outcome.owner} is dead; {verb}:"]
    if removed["processes"]:
        lines.append("  processes " + ", ".join(f"{p['pid']} ({p['role']})"
                                                for p in removed["processes"]))
    for kind in ("bridges", "interfaces", "directories"):
        if removed[kind]:
            lines.append(f"  {kind} " + " ".join(removed[kind]))
    if len(lines) == 1:
        lines[0] += " nothing was left"
    lines += [f"  left alone: {reason}" for reason in outcome.kept]
    if outcome.error:
        lines.append(f"  failed, record kept: {outcome.error}")
    return "\n".join(lines)
