"""``beaver plot``: draw an experiment's figure(s) from its CSV results.

Reads ``RESULTS/NAME/NAME.csv`` (written by ``beaver experiment NAME``;
RESULTS is ``results`` unless ``--results`` says otherwise) and writes PNG
files beside it, printing their paths. Figures come from the CSV alone.

``beaver plot diagram --snapshot ID`` is the other kind of figure: the
space-time diagram of one stored snapshot (``--db``, ``--run``), written to
``RESULTS/diagram/run-R-snapshot-ID.png`` (as ``beaver show ID --diagram``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cli.errors import UsageError
from controller.coordinator.store import DEFAULT_DB, StoreError, open_existing

NAME = "plot"
DIAGRAM = "diagram"
HELP = "draw an experiment's figures (PNG) from its CSV results"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", metavar="NAME", help="experiment whose results to draw")
    parser.add_argument("--results", metavar="DIR", default="results",
                        help="results root holding DIR/NAME/NAME.csv (default: results)")
    parser.add_argument("--snapshot", type=int, metavar="ID",
                        help="with NAME diagram: the stored snapshot to draw")
    parser.add_argument("--db", type=Path, default=DEFAULT_DB,
                        help=f"with NAME diagram: snapshot database (default {DEFAULT_DB})")
    parser.add_argument("--run", type=int, help="with NAME diagram: run id (default: newest)")


def run(args: argparse.Namespace) -> int:
    from experiments import EXPERIMENTS

    if args.name == DIAGRAM:
        return _diagram(args)
    experiment = EXPERIMENTS.get(args.name)
    if experiment is None:
        raise UsageError(f"unknown experiment {args.name!r}; choose one of "
                         f"{', '.join(EXPERIMENTS)} (or {DIAGRAM})")
    try:
        paths = experiment.draw(Path(args.results))
    except FileNotFoundError as error:
        raise UsageError(f"{error}; run `beaver experiment {args.name}` first") from None
    for path in paths:
        print(path)
    return 0


def _diagram(args: argparse.Namespace) -> int:
    from cli.commands.show import chosen_run, diagram

    if args.snapshot is None:
        raise UsageError("plot diagram needs --snapshot ID")
    try:
        store = open_existing(args.db)
    except StoreError as error:
        print(f"beaver plot: {error}", file=sys.stderr)
        return 1
    with store:
        run_id = chosen_run(store, args.run)
        path = Path(args.results) / DIAGRAM / f"run-{run_id}-snapshot-{args.snapshot}.png"
        print(diagram(store, run_id, args.snapshot, path))
    return 0
