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
from pathlib import Path

from cli.bounds import record_id
from cli.errors import UsageError
from cli.stores import chosen_run, open_store
from controller.coordinator.store import DEFAULT_DB

NAME = "plot"
DIAGRAM = "diagram"
HELP = "draw an experiment's figures (PNG) from its CSV results"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", metavar="NAME", help="experiment whose results to draw")
    parser.add_argument("--results", metavar="DIR", default="results",
                        help="results root holding DIR/NAME/NAME.csv (default: results)")
    parser.add_argument("--snapshot", type=record_id, metavar="ID",
                        help="with NAME diagram: the stored snapshot to draw")
    parser.add_argument("--db", type=Path, default=DEFAULT_DB,
                        help=f"with NAME diagram: snapshot database (default {DEFAULT_DB})")
    parser.add_argument("--run", type=record_id,
                        help="with NAME diagram: run id (default: newest)")


def run(args: argparse.Namespace) -> int:
    from experiments import EXPERIMENTS

    if args.name == DIAGRAM:
        return _diagram(args)
    experiment = EXPERIMENTS.get(args.name)
    if experiment is None:
        raise UsageError(f"unknown experiment {args.name!r}; choose one of "
                         f"{', '.join(EXPERIMENTS)} (or {DIAGRAM})")
    csv_path = Path(args.results) / args.name / f"{args.name}.csv"
    if not csv_path.is_file():
        raise UsageError(f"no results file {csv_path}; run `beaver experiment {args.name}` "
                         f"first")
    check_results(csv_path)
    try:
        paths = experiment.draw(Path(args.results))
    except FileNotFoundError as error:
        raise UsageError(f"{error}; run `beaver experiment {args.name}` first") from None
    except (ValueError, KeyError, TypeError, IndexError, UnicodeDecodeError) as error:
        raise UsageError(f"{csv_path} is not a results table this figure can draw: "
                         f"{type(error).__name__}: {' '.join(str(error).split())[:200]}") from None
    for path in paths:
        print(path)
    return 0


def check_results(csv_path: Path) -> None:
    """A readable CSV with a header, at least one row and some finite number; else UsageError."""
    import numpy as np
    import pandas as pd

    try:
        table = pd.read_csv(csv_path)
    except (OSError, ValueError, UnicodeDecodeError, pd.errors.ParserError) as error:
        raise UsageError(f"cannot read {csv_path} as CSV: "
                         f"{' '.join(str(error).split())[:200]}") from None
    measured = table.select_dtypes("floating").to_numpy(dtype=float, na_value=float("nan"))
    if table.empty or (measured.size and not np.isfinite(measured).any()):
        raise UsageError(f"{csv_path} holds no measurement to draw (no rows, or every measured "
                         f"value missing or infinite); run the experiment again")


def _diagram(args: argparse.Namespace) -> int:
    from cli.diagrams import diagram

    if args.snapshot is None:
        raise UsageError("plot diagram needs --snapshot ID")
    store = open_store(args.db, read_only=True)
    with store:
        run_id = chosen_run(store, args.run)
        path = Path(args.results) / DIAGRAM / f"run-{run_id}-snapshot-{args.snapshot}.png"
        print(diagram(store, run_id, args.snapshot, path))
    return 0
