"""``beaver experiment``: run a named experiment and write its tidy CSV and JSON.

``beaver experiment --list`` names them; ``beaver experiment NAME`` runs one
(``--quick``: seconds, for tests and classrooms; default: minutes on two
cores) and writes ``OUT/NAME/NAME.csv`` and ``OUT/NAME/NAME.json`` (OUT is
``results`` unless ``--out`` says otherwise). Progress goes to stderr; the
CSV path is printed on stdout.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cli.errors import UsageError

NAME = "experiment"
HELP = "run a named experiment (the paper's figures and more) and write tidy CSV results"

MAX_SEEDS = 100


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", nargs="?", metavar="NAME", help="experiment to run (see --list)")
    parser.add_argument("--list", action="store_true", help="list the experiments and exit")
    parser.add_argument("--quick", action="store_true",
                        help="a small grid that finishes in seconds")
    parser.add_argument("--seeds", metavar="K", default=None,
                        help="seeds per grid point (default: the experiment's own)")
    parser.add_argument("--out", metavar="DIR", default="results",
                        help="results root; files go to DIR/NAME/ (default: results)")


def run(args: argparse.Namespace) -> int:
    from experiments import EXPERIMENTS, run_experiment
    from experiments.base import ExperimentError

    if args.list:
        width = max(len(name) for name in EXPERIMENTS)
        for name, experiment in EXPERIMENTS.items():
            print(f"{name:<{width}}  {experiment.question}")
        return 0
    if args.name is None:
        raise UsageError("name an experiment (beaver experiment --list shows them)")
    experiment = EXPERIMENTS.get(args.name)
    if experiment is None:
        raise UsageError(f"unknown experiment {args.name!r}; choose one of "
                         f"{', '.join(EXPERIMENTS)}")
    seeds = experiment.default_seeds if args.seeds is None else parse_seeds(args.seeds)
    if args.quick and args.seeds is None:
        seeds = 1
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {args.out!r} exists and is not a directory")
    problem = experiment.machine_problem()
    if problem:
        print(f"beaver experiment: {experiment.name}: {problem}", file=sys.stderr)
        return 1
    try:
        (out / experiment.name).mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UsageError(f"--out {args.out!r}: cannot make a results directory there "
                         f"({error.strerror or error})") from None
    print(f"{experiment.name}: {'quick' if args.quick else 'full'} run, {seeds} seed(s)",
          file=sys.stderr)
    try:
        csv_path = run_experiment(experiment, out, args.quick, seeds, _progress)
    except ExperimentError as error:
        print(f"beaver experiment: {experiment.name}: {error}", file=sys.stderr)
        return 1
    print(csv_path)
    return 0


def parse_seeds(text: str) -> int:
    """``--seeds``: a whole number in 1..MAX_SEEDS."""
    try:
        seeds = int(text)
    except ValueError:
        raise UsageError(f"--seeds must be a whole number, got {text!r}") from None
    if not 1 <= seeds <= MAX_SEEDS:
        raise UsageError(f"--seeds must be in 1..{MAX_SEEDS}, got {seeds}")
    return seeds


def _progress(line: str) -> None:
    print(f"  {line}", file=sys.stderr, flush=True)
