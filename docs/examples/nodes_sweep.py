"""An experiment: does the share of snapshots Beaver completes depend on the in-group's size?

The smallest experiment, written as docs/extending.md describes: its runs
(``plan`` and ``rows``, one simulated world per point and seed), its figure
(``draw``, from the CSV alone) and the :class:`~experiments.base.Experiment`
that names them, registered with one entry in :mod:`experiments`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from analysis.frames import figure, figure_path, load, over_seeds, save
from experiments.base import Experiment, Plan, Progress, Row, fraction
from experiments.sweep import grid, outcomes
from simulator import WorldConfig

NAME = "nodes-sweep"


def plan(quick: bool, seeds: int) -> Plan:
    return Plan(quick=quick, seeds=seeds,
                grid={"nodes": [4, 16] if quick else [4, 8, 16, 32, 64]},
                fixed={"snapshots": 20 if quick else 200, "gateways": 2})


def rows(plan: Plan, progress: Progress) -> Iterator[Row]:
    def config_of(point: dict) -> WorldConfig:
        return WorldConfig(nodes=point["nodes"], gateways=plan.fixed["gateways"],
                           snapshots=plan.fixed["snapshots"], seed=point["seed"])

    points = grid(seed=range(1, plan.seeds + 1), **plan.grid)
    for point, _, outcome in outcomes(points, config_of, progress):
        s = outcome.summary
        yield {"nodes": point["nodes"], "seed": s.seed, "snapshots": s.snapshots,
               "complete": s.complete, "complete_fraction": fraction(s.complete, s.snapshots),
               "inconsistent": s.inconsistent}


def draw(root: Path) -> list[Path]:
    frame = load(root, NAME)
    ours = over_seeds(frame, ["nodes"], "complete_fraction")
    fig, (axis,) = figure()
    axis.errorbar(ours["nodes"], 100 * ours["mean"], yerr=100 * ours["std"].fillna(0),
                  marker="o", capsize=3)
    axis.set_xlabel("in-group nodes")
    axis.set_ylabel("snapshots complete (% of started)")
    axis.set_title("Completion by in-group size")
    caption = (f"Mean and std over {frame['seed'].nunique()} seed(s); the oracle found "
               f"{int(frame['inconsistent'].sum())} inconsistent snapshots.")
    return [save(fig, figure_path(root, NAME), caption)]


EXPERIMENT = Experiment(
    name=NAME,
    question="Does the share of snapshots that complete depend on the in-group's size?",
    columns=("nodes", "seed", "snapshots", "complete", "complete_fraction", "inconsistent"),
    plan=plan,
    rows=rows,
    draw=draw,
)
