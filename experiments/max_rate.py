"""``max-rate`` (the paper's Fig 10): the highest snapshot rate the coordinator sustains.

The coordinator is offered far more snapshots than it can start (10 MHz):
it starts one whenever its window of snapshots in flight has room, so the
rate at which it starts them is its capacity. With a window of 1 (no
parallelism) each snapshot must finish before the next starts; with 31
(the most 6-bit wire ids allow) up to 31 are in flight. A snapshot is
finished when its gateway phase is over and it is complete: every node was
notified after t1 and reported, and every counted in-flight message was
recorded; and an id's wire code is reused only a packet lifetime after the
id stopped being stamped (:mod:`beaver.wire_floor`). So the simulated
capacity is about ``window / (finish time + packet lifetime)``: the
simulator charges no processing time to the coordinator or the gateways,
which is what limits the paper's prototype.

The first two windows of starts are a burst from an empty pipeline and are
left out of the rate.

Its figure (:func:`draw`, drawn from the CSV alone): sustained snapshot rate vs
|G|, with and without parallelism.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from statistics import fmean

from analysis import paper
from analysis.frames import PAPER_STYLE, figure, figure_path, load, over_seeds, save
from experiments.base import Experiment, Plan, Progress, Row, fraction, start_rate_hz
from experiments.sweep import gateway_counts, grid, outcomes
from simulator import US, Workload, WorldConfig

NAME = "max-rate"

OFFERED_RATE_HZ = 1e7
WINDOWS = [1, 31]


def plan(quick: bool, seeds: int) -> Plan:
    return Plan(
        quick=quick, seeds=seeds,
        grid={"gateways": gateway_counts(quick), "window": WINDOWS},
        fixed={"snapshots_per_window_slot": 10 if quick else 60,
               "offered_rate_hz": OFFERED_RATE_HZ, "nodes": 16, "tau_min_us": 33.0},
    )


def rows(plan: Plan, progress: Progress) -> Iterator[Row]:
    points = grid(seed=range(1, plan.seeds + 1), **plan.grid)
    per_slot = plan.fixed["snapshots_per_window_slot"]

    def config_of(point: dict) -> WorldConfig:
        return WorldConfig(
            gateways=point["gateways"],
            nodes=plan.fixed["nodes"],
            window=point["window"],
            snapshots=per_slot * point["window"] + 2 * point["window"] + 1,
            seed=point["seed"],
            workload=Workload(snapshot_rate_hz=OFFERED_RATE_HZ),
        )

    for point, _, outcome in outcomes(points, config_of, progress):
        statuses = outcome.run.statuses
        finished = [s.completed_at - s.t0 for s in statuses if s.completed_at is not None]
        updates = [s.update_time for s in statuses if s.update_time is not None]
        yield {
            "gateways": point["gateways"],
            "window": point["window"],
            "seed": point["seed"],
            "snapshots": len(statuses),
            "sustained_rate_hz": round(
                start_rate_hz([s.t0 for s in statuses], skip=2 * point["window"]), 1
            ),
            "mean_complete_us": round(fmean(finished) / US, 2) if finished else float("nan"),
            "mean_t1_t0_us": round(fmean(updates) / US, 3) if updates else float("nan"),
            "valid_fraction": fraction(outcome.summary.valid, len(statuses)),
        }


def draw(root: Path) -> list[Path]:
    frame = load(root, NAME)
    ours = over_seeds(frame, ["window", "gateways"], "sustained_rate_hz")
    theirs = paper.max_rate()
    windows = sorted(ours["window"].unique())
    fig, (axis,) = figure()
    colors = {True: "tab:blue", False: "tab:red"}
    for window in windows:
        parallel = window > 1
        mine = ours[ours["window"] == window]
        axis.errorbar(mine["gateways"], mine["mean"], yerr=mine["std"], marker="o", capsize=3,
                      color=colors[parallel], label=f"ours, window {window}")
    for parallel, label in ((True, "with parallelism"), (False, "without parallelism")):
        same = theirs[theirs["parallel"] == parallel]
        axis.plot(same["gateways"], same["sustained_rate_hz"], color=colors[parallel],
                  marker="s", markerfacecolor="none", label=f"paper, {label}", **PAPER_STYLE)
    axis.set_yscale("log")
    axis.set_xlabel("gateways |G|")
    axis.set_ylabel("sustained snapshot rate (Hz, log)")
    axis.set_xticks(sorted(ours["gateways"].unique()))
    axis.grid(alpha=0.3, which="both")
    axis.legend(fontsize=8)
    axis.set_title("Maximum snapshot rate (cf. paper Fig 10)")
    finish = frame.groupby("window")["mean_complete_us"].mean()
    caption = (f"Starts per second when snapshots are offered at 10 MHz, mean and std over "
               f"{frame['seed'].nunique()} seed(s); dashed: {paper.SOURCE}. Mean time to "
               "complete a snapshot: " + ", ".join(
                   f"window {w}: {t:.0f} us" for w, t in finish.items()) + ".")
    return [save(fig, figure_path(root, NAME), caption)]


EXPERIMENT = Experiment(
    name=NAME,
    question="How many snapshots per second can the coordinator start, by |G|, with and "
             "without snapshots in parallel?",
    columns=("gateways", "window", "seed", "snapshots", "sustained_rate_hz", "mean_complete_us",
             "mean_t1_t0_us", "valid_fraction"),
    plan=plan,
    rows=rows,
    draw=draw,
)
