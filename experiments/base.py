"""What an experiment is, and how its results are written.

An :class:`Experiment` is a named sweep over simulated worlds (or emulated
data centers) and the figures drawn from its results. It declares
its output columns (with units in their names) and, for a scale (``quick``
or full) and a number of seeds, the grid of parameters it will run. Running
it yields one row per observation (a dict keyed by those columns); the
runner writes the rows as a tidy long-format CSV and the parameters as a
small JSON file beside it::

    <out>/<name>/<name>.csv     one row per observation
    <out>/<name>/<name>.json    experiment, scale, seeds, grid, fixed settings, columns

Its figures (``draw``, with the helpers of :mod:`analysis`) read only these files.
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stats import start_rate

Row = dict[str, Any]
Progress = Callable[[str], None]


@dataclass(frozen=True)
class Plan:
    """The parameters of one run of an experiment, as recorded in its JSON file."""

    quick: bool
    seeds: int
    grid: dict[str, list[Any]]
    """The swept parameters and their values."""
    fixed: dict[str, Any] = field(default_factory=dict)
    """Settings that stay the same across the sweep."""


@dataclass(frozen=True)
class Experiment:
    """A named experiment: its question, its columns, its plan, its runner and its figures."""

    name: str
    question: str
    columns: tuple[str, ...]
    plan: Callable[[bool, int], Plan]
    """``plan(quick, seeds)``: the grid to run."""
    rows: Callable[[Plan, Progress], Iterator[Row]]
    """Runs the plan, yielding observations and reporting progress lines."""
    draw: Callable[[Path], list[Path]]
    """``draw(root)``: its figures from ``root/<name>/<name>.csv`` alone; the PNG paths."""
    default_seeds: int = 3
    machine_problem: Callable[[], str | None] = lambda: None
    """Why this machine cannot run the experiment (e.g. it needs root), or None."""


class ExperimentError(RuntimeError):
    """An experiment could not go on (the emulation failed): one line for the user."""


def result_paths(out: Path, name: str) -> tuple[Path, Path]:
    """The CSV and JSON files of experiment ``name`` under the results root ``out``."""
    folder = out / name
    return folder / f"{name}.csv", folder / f"{name}.json"


def run_experiment(
    experiment: Experiment, out: Path, quick: bool, seeds: int, progress: Progress
) -> Path:
    """Run ``experiment`` and write its CSV and JSON under ``out``; returns the CSV path."""
    plan = experiment.plan(quick, seeds)
    csv_path, json_path = result_paths(out, experiment.name)
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    count = 0
    partial = csv_path.with_suffix(".csv.partial")
    try:
        with partial.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=experiment.columns, extrasaction="raise")
            writer.writeheader()
            for row in experiment.rows(plan, progress):
                writer.writerow(row)
                count += 1
        partial.replace(csv_path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    parameters = {
        "experiment": experiment.name,
        "question": experiment.question,
        "quick": plan.quick,
        "seeds": plan.seeds,
        "grid": plan.grid,
        "fixed": plan.fixed,
        "columns": list(experiment.columns),
        "rows": count,
        "wall_s": round(time.perf_counter() - began, 3),
    }
    json_path.write_text(json.dumps(parameters, indent=2, sort_keys=True) + "\n")
    return csv_path


def fraction(part: int, whole: int) -> float:
    """``part / whole``, or NaN (an empty CSV cell in pandas) when ``whole`` is 0."""
    return part / whole if whole else float("nan")


def start_rate_hz(start_times: list[float], skip: int = 0) -> float:
    """Snapshots started per second after the first ``skip`` starts (NaN if too few)."""
    rate = start_rate(start_times, skip)
    return float("nan") if rate is None else rate
