"""``beaver export RUN --to DIR``: a stored run as one tidy CSV per table, for pandas.

Writes ``DIR/<table>.csv`` for every table of the snapshot database
(:data:`analysis.runs.TABLES`), restricted to run RUN, with the oracle's
verdicts joined to ``snapshots.csv`` (``oracle_*`` columns). The database is
opened read-only. ``docs/analysis.ipynb`` loads such a folder.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from cli.errors import UsageError
from cli.stores import chosen_run, open_store
from controller.coordinator.store import DEFAULT_DB

NAME = "export"
HELP = "write a stored run as one tidy CSV per table (the oracle's verdicts joined)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", type=int, metavar="RUN", help="run id (beaver show lists runs)")
    parser.add_argument("--to", type=Path, required=True, metavar="DIR",
                        help="folder to write the CSV files into")
    parser.add_argument("--db", type=Path, default=DEFAULT_DB,
                        help=f"snapshot database (default {DEFAULT_DB})")


def run(args: argparse.Namespace) -> int:
    from analysis.runs import export

    if args.to.exists() and not args.to.is_dir():
        raise UsageError(f"--to {args.to} exists and is not a folder")
    with open_store(args.db, read_only=True) as store:
        chosen_run(store, args.run)
    for path in export(args.db, args.run, args.to):
        print(path)
    return 0
