"""``beaver plot``: draw an experiment's figure(s) from its CSV results.

Reads ``RESULTS/NAME/NAME.csv`` (written by ``beaver experiment NAME``;
RESULTS is ``results`` unless ``--results`` says otherwise) and writes PNG
files beside it, printing their paths. Figures come from the CSV alone.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from cli.errors import UsageError

NAME = "plot"
HELP = "draw an experiment's figures (PNG) from its CSV results"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", metavar="NAME", help="experiment whose results to draw")
    parser.add_argument("--results", metavar="DIR", default="results",
                        help="results root holding DIR/NAME/NAME.csv (default: results)")


def run(args: argparse.Namespace) -> int:
    from analysis import FIGURES, draw

    if args.name not in FIGURES:
        raise UsageError(f"unknown experiment {args.name!r}; choose one of {', '.join(FIGURES)}")
    try:
        paths = draw(args.name, Path(args.results))
    except FileNotFoundError as error:
        raise UsageError(f"{error}; run `beaver experiment {args.name}` first") from None
    for path in paths:
        print(path)
    return 0
