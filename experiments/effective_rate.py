"""``effective-rate`` (the paper's Fig 11): how many snapshots does Beaver accept?

For |G| gateways and an offered snapshot frequency, the share of snapshots
the coordinator accepts as valid (t1 - t0 < tau_min) among those started,
and, from the oracle, how many accepted snapshots were inconsistent (Beaver
promises none). The window of snapshots in flight is the largest 6-bit ids
allow, so high frequencies are limited by completion, not by the sweep.

Its figure (:func:`draw`, drawn from the CSV alone): the share of snapshots
accepted vs |G|, per frequency (Fig 11).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import matplotlib.pyplot as plt

from analysis import paper
from analysis.frames import PAPER_STYLE, figure, figure_path, load, over_seeds, save
from experiments.base import Experiment, Plan, Progress, Row, fraction, start_rate_hz
from experiments.sweep import gateway_counts, grid, outcomes
from simulator import Workload, WorldConfig

NAME = "effective-rate"

WINDOW = 31
NODES = 16


def draw(root: Path) -> list[Path]:
    frame = load(root, NAME)
    ours = over_seeds(frame, ["snapshot_rate_hz", "gateways"], "valid_fraction")
    theirs = paper.effective_rate()
    rates = sorted(ours["snapshot_rate_hz"].unique())
    colors = plt.cm.viridis([i / max(1, len(rates) - 1) * 0.85 for i in range(len(rates))])
    fig, (axis,) = figure()
    for rate, color in zip(rates, colors, strict=True):
        mine = ours[ours["snapshot_rate_hz"] == rate]
        axis.errorbar(mine["gateways"], 100 * mine["mean"], yerr=100 * mine["std"],
                      color=color, marker="o", capsize=3, label=f"ours, {rate:,.0f} Hz")
        same = theirs[theirs["snapshot_rate_hz"] == rate].sort_values("gateways")
        if not same.empty:
            axis.plot(same["gateways"], 100 * same["valid_fraction"], color=color,
                      label=f"paper, {rate:,.0f} Hz", **PAPER_STYLE)
    axis.set_xlabel("gateways |G|")
    axis.set_ylabel("snapshots accepted as valid (% of started)")
    axis.set_xticks(sorted(ours["gateways"].unique()))
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7, ncol=2)
    axis.set_title("Effective snapshot rate (cf. paper Fig 11)")
    accepted, bad = int(frame["valid"].sum()), int(frame["inconsistent_valid"].sum())
    caption = (f"Share of started snapshots with t1 - t0 < tau_min (33 us), mean and std over "
               f"{frame['seed'].nunique()} seed(s); dashed: {paper.SOURCE}. "
               f"Oracle: {bad} inconsistent among {accepted} accepted snapshots.")
    return [save(fig, figure_path(root, NAME), caption)]


def plan(quick: bool, seeds: int) -> Plan:
    return Plan(
        quick=quick,
        seeds=seeds,
        grid={
            "gateways": gateway_counts(quick),
            "snapshot_rate_hz": [1024, 8192] if quick else [1024, 4096, 16384, 65536],
        },
        fixed={"snapshots": 100 if quick else 1000, "window": WINDOW, "nodes": NODES,
               "tau_min_us": 33.0},
    )


def rows(plan: Plan, progress: Progress) -> Iterator[Row]:
    points = grid(seed=range(1, plan.seeds + 1), **plan.grid)

    def config_of(point: dict) -> WorldConfig:
        return WorldConfig(
            gateways=point["gateways"],
            nodes=NODES,
            snapshots=plan.fixed["snapshots"],
            window=WINDOW,
            seed=point["seed"],
            workload=Workload(snapshot_rate_hz=point["snapshot_rate_hz"]),
        )

    for point, _, outcome in outcomes(points, config_of, progress):
        summary = outcome.summary
        yield {
            "gateways": point["gateways"],
            "snapshot_rate_hz": point["snapshot_rate_hz"],
            "seed": point["seed"],
            "snapshots": summary.snapshots,
            "achieved_rate_hz": round(start_rate_hz([s.t0 for s in outcome.run.statuses]), 1),
            "valid": summary.valid,
            "valid_fraction": fraction(summary.valid, summary.snapshots),
            "inconsistent": summary.inconsistent,
            "inconsistent_valid": summary.inconsistent_valid,
        }


EXPERIMENT = Experiment(
    name=NAME,
    question="What share of snapshots does Beaver accept as valid, by |G| and frequency, "
             "and are the accepted ones all consistent?",
    columns=("gateways", "snapshot_rate_hz", "seed", "snapshots", "achieved_rate_hz", "valid",
             "valid_fraction", "inconsistent", "inconsistent_valid"),
    plan=plan,
    rows=rows,
    draw=draw,
)
