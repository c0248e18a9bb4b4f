"""``tau-sensitivity``: what if the coordinator's tau_min is larger than the true one?

Beaver's guarantee rests on one assumption: no external causal chain is
shorter than the tau_min the coordinator checks. Here the world's true
shortest chain stays fixed and the coordinator checks ``ratio`` times it
(ratio < 1: a cautious bound, ratio > 1: a wrong one). To make the rare
case visible in a short run, the world is busy (many messages, half of
in-group sends start an external chain) and 5 % of gateway update legs hit
the slow tail, so t1 - t0 often exceeds the true tau_min.

Its figure (:func:`draw`, drawn from the CSV alone): accepted-but-inconsistent
snapshots vs a wrong tau_min.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from matplotlib.ticker import NullLocator

from analysis.frames import figure, figure_path, load, over_seeds, save
from experiments.base import Experiment, Plan, Progress, Row, fraction
from experiments.sweep import grid, outcomes
from simulator import US, Latencies, Workload, WorldConfig

NAME = "tau-sensitivity"

SLOW_GATEWAY_SHARE = 0.05
WORKLOAD = Workload(snapshot_rate_hz=4096, relay_share=0.5, message_rate_hz=20000,
                    request_rate_hz=20000)


def plan(quick: bool, seeds: int) -> Plan:
    return Plan(
        quick=quick,
        seeds=seeds,
        grid={
            "true_tau_min_us": [5.0, 33.0] if not quick else [5.0],
            "bound_ratio": [1, 2, 8, 32] if quick else [0.5, 1, 2, 4, 8, 16, 32],
        },
        fixed={"snapshots": 150 if quick else 800, "gateways": 4, "nodes": 8,
               "slow_gateway_share": SLOW_GATEWAY_SHARE,
               "workload": {key: getattr(WORKLOAD, key) for key in (
                   "snapshot_rate_hz", "relay_share", "message_rate_hz", "request_rate_hz")}},
    )


def rows(plan: Plan, progress: Progress) -> Iterator[Row]:
    points = grid(seed=range(1, plan.seeds + 1), **plan.grid)
    latencies = Latencies()
    latencies = replace(
        latencies,
        gateway_leg=replace(latencies.gateway_leg, tail_probability=SLOW_GATEWAY_SHARE),
    )

    def config_of(point: dict) -> WorldConfig:
        true = point["true_tau_min_us"] * US
        return WorldConfig(
            gateways=plan.fixed["gateways"],
            nodes=plan.fixed["nodes"],
            snapshots=plan.fixed["snapshots"],
            tau_min=true,
            controller_tau_min=true * point["bound_ratio"],
            seed=point["seed"],
            workload=WORKLOAD,
            latencies=latencies,
        )

    for point, _, outcome in outcomes(points, config_of, progress):
        s = outcome.summary
        yield {
            "true_tau_min_us": s.tau_min_us,
            "controller_tau_min_us": s.controller_tau_min_us,
            "bound_ratio": point["bound_ratio"],
            "seed": s.seed,
            "snapshots": s.snapshots,
            "valid": s.valid,
            "inconsistent": s.inconsistent,
            "inconsistent_valid": s.inconsistent_valid,
            "valid_fraction": fraction(s.valid, s.snapshots),
            "inconsistent_valid_fraction": fraction(s.inconsistent_valid, s.valid),
        }


def draw(root: Path) -> list[Path]:
    frame = load(root, NAME)
    fig, (left, right) = figure(panels=2)
    panels = ((left, "inconsistent_valid_fraction", "inconsistent among accepted (%)"),
              (right, "valid_fraction", "snapshots accepted (% of started)"))
    for axis, column, label in panels:
        summary = over_seeds(frame, ["true_tau_min_us", "bound_ratio"], column)
        for true_tau, rows in summary.groupby("true_tau_min_us"):
            axis.errorbar(rows["bound_ratio"], 100 * rows["mean"], yerr=100 * rows["std"],
                          marker="o", capsize=3, label=f"true tau_min {true_tau:g} us")
        undefined = summary[summary["mean"].isna()]
        if len(undefined):
            axis.scatter(undefined["bound_ratio"], [0] * len(undefined), marker="x",
                         color="gray", zorder=3, label="no snapshot accepted (no fraction)")
        axis.axvline(1.0, color="gray", linestyle=":", label="bound = true tau_min")
        axis.set_xscale("log", base=2)
        ratios = sorted(frame["bound_ratio"].unique())
        axis.set_xticks(ratios, labels=[f"{ratio:g}" for ratio in ratios])
        axis.xaxis.set_minor_locator(NullLocator())
        axis.set_xlabel("coordinator's tau_min / true tau_min (log)")
        axis.set_ylabel(label)
        axis.grid(alpha=0.3, which="both")
        axis.legend(fontsize=8)
    left.set_title("Broken promise: inconsistent snapshots accepted")
    right.set_title("What a larger bound buys: more accepted")
    total = frame.groupby(frame["bound_ratio"] <= 1)["inconsistent_valid"].sum()
    caption = (f"Mean and std over {frame['seed'].nunique()} seed(s) of a busy world (5 % slow "
               "gateway legs, half of in-group sends start an external chain). Accepted "
               "inconsistent "
               f"snapshots with a correct or cautious bound (ratio <= 1): "
               f"{int(total.get(True, 0))}; with a too-large bound: {int(total.get(False, 0))}.")
    return [save(fig, figure_path(root, NAME), caption)]


EXPERIMENT = Experiment(
    name=NAME,
    question="How many inconsistent snapshots does Beaver accept when its tau_min bound is "
             "larger than the world's true shortest external causal chain?",
    columns=("true_tau_min_us", "controller_tau_min_us", "bound_ratio", "seed", "snapshots",
             "valid", "inconsistent", "inconsistent_valid", "valid_fraction",
             "inconsistent_valid_fraction"),
    plan=plan,
    rows=rows,
    default_seeds=5,
    draw=draw,
)
