"""``max-rate`` (the paper's Fig 10): the highest snapshot rate the coordinator sustains.

The coordinator is offered far more snapshots than it can start (10 MHz):
it starts one whenever its window of snapshots in flight has room, so the
rate at which it starts them is its capacity. With a window of 1 (no
parallelism) each snapshot must finish before the next starts; with 31
(the most 6-bit wire ids allow) up to 31 are in flight. A snapshot is
finished when its gateway phase is over and it is complete: every node was
notified after t1 and reported, and every counted in-flight message was
recorded. So the simulated capacity is about ``window / finish time``: the
simulator charges no processing time to the coordinator or the gateways,
which is what limits the paper's prototype.

The first two windows of starts are a burst from an empty pipeline and are
left out of the rate.
"""

from __future__ import annotations

from collections.abc import Iterator
from statistics import fmean

from experiments.base import Experiment, Plan, Progress, Row, fraction, start_rate_hz
from experiments.sweep import grid, outcomes
from simulator import US, Workload, WorldConfig

OFFERED_RATE_HZ = 1e7
WINDOWS = [1, 31]


def plan(quick: bool, seeds: int) -> Plan:
    return Plan(
        quick=quick,
        seeds=seeds,
        grid={
            "gateways": [2, 16] if quick else [2, 4, 6, 8, 10, 12, 14, 16],
            "window": WINDOWS,
        },
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


EXPERIMENT = Experiment(
    name="max-rate",
    question="How many snapshots per second can the coordinator start, by |G|, with and "
             "without snapshots in parallel?",
    columns=("gateways", "window", "seed", "snapshots", "sustained_rate_hz", "mean_complete_us",
             "mean_t1_t0_us", "valid_fraction"),
    plan=plan,
    rows=rows,
)
