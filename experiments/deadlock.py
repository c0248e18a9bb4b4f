"""``deadlock``: deadlock detection and an integration test on snapshots of a lock service.

The lock service of :mod:`simulator.locks`: external clients run two-lock
transactions against lock sites on the in-group nodes. With ``disorder``
0 every transaction takes its locks in ascending order, so no deadlock can
form and every reported one is a phantom; with a small share of
transactions taking them the other way round, real deadlocks form (and
stay). Every protocol runs the same worlds; from each snapshot it accepted,
the wait-for graph (:mod:`usecases.deadlock`) and the invariant check "no
client holds locks of two transactions" (:mod:`usecases.integration`).

Its figure (:func:`draw`, drawn from the CSV alone): phantom and real deadlocks,
and the invariant check's false alarms, per protocol, from snapshots of the lock
service.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from analysis.frames import figure, figure_path, load, save
from beaver.protocols import PROTOCOLS
from experiments.base import Experiment, Plan, Progress, Row
from experiments.sweep import grid
from simulator import Workload, WorldConfig
from simulator.locks import LockWorld
from usecases.deadlock import report
from usecases.history import observe
from usecases.integration import check

NAME = "deadlock"


def plan(quick: bool, seeds: int) -> Plan:
    return Plan(
        quick=quick,
        seeds=seeds,
        grid={"protocol": list(PROTOCOLS), "disorder": [0.0, 0.02]},
        fixed={"nodes": 6, "gateways": 2, "clients": 24, "locks_per_node": 1,
               "transaction_rate_hz_per_node": 50000.0,
               "snapshots": 300 if quick else 1000, "tau_min_us": 33.0},
    )


def rows(plan: Plan, progress: Progress) -> Iterator[Row]:
    fixed = plan.fixed
    points = grid(seed=range(1, plan.seeds + 1), **plan.grid)
    for index, point in enumerate(points, start=1):
        config = WorldConfig(
            protocol=point["protocol"], nodes=fixed["nodes"], gateways=fixed["gateways"],
            externals=fixed["clients"], relays=fixed["clients"], snapshots=fixed["snapshots"],
            seed=point["seed"],
            workload=Workload(message_rate_hz=fixed["transaction_rate_hz_per_node"],
                              request_rate_hz=0.0),
        )
        world = functools.partial(LockWorld, locks_per_node=fixed["locks_per_node"],
                                  disorder=point["disorder"])
        observed = observe(config, world)
        deadlocks, invariant = report(observed), check(observed)
        accepted = observed.accepted()
        progress(f"[{index}/{len(points)}] {point['protocol']} disorder {point['disorder']} "
                 f"seed {point['seed']}: {deadlocks.phantom_deadlocks} phantom, "
                 f"{deadlocks.deadlocks_found}/{deadlocks.deadlocks_real} real found, "
                 f"{invariant.false_alarms} false alarm(s)")
        yield {
            "protocol": point["protocol"],
            "disorder": point["disorder"],
            "seed": point["seed"],
            "snapshots": len(observed.run.statuses),
            "accepted": len(accepted),
            "inconsistent_accepted": sum(
                not observed.verdicts[s.snapshot_id].consistent for s in accepted),
            "reports": deadlocks.reports,
            "phantom_deadlocks": deadlocks.phantom_deadlocks,
            "snapshots_with_phantom": deadlocks.snapshots_with_phantom,
            "deadlocks_real": deadlocks.deadlocks_real,
            "deadlocks_found": deadlocks.deadlocks_found,
            "deadlocks_missed": deadlocks.deadlocks_missed,
            "invariant_false_alarms": invariant.false_alarms,
        }


PANELS = {
    "phantom_deadlocks": "phantom deadlocks reported",
    "deadlocks_found": "real deadlocks found (of real, dashed)",
    "invariant_false_alarms": "false alarms: a client holding two transactions",
}


def draw(root: Path) -> list[Path]:
    frame = load(root, NAME)
    protocols = list(dict.fromkeys(frame["protocol"]))
    disorders = sorted(frame["disorder"].unique())
    totals = frame.groupby(["protocol", "disorder"]).sum(numeric_only=True)
    fig, axes = figure(panels=len(PANELS), width=4.6)
    width = 0.8 / len(disorders)
    positions = np.arange(len(protocols))
    for axis, (column, title) in zip(axes, PANELS.items(), strict=True):
        for i, disorder in enumerate(disorders):
            offset = (i - (len(disorders) - 1) / 2) * width
            values = [totals.loc[(p, disorder), column] for p in protocols]
            axis.bar(positions + offset, values, width, color=plt.cm.tab10(i),
                     edgecolor="black", linewidth=0.4,
                     label=f"{disorder:.0%} of transactions out of lock order")
            if column == "deadlocks_found":
                real = [totals.loc[(p, disorder), "deadlocks_real"] for p in protocols]
                axis.hlines(real, positions + offset - width / 2, positions + offset + width / 2,
                            colors="black", linestyles="--")
        axis.set_xticks(positions, protocols, rotation=15)
        axis.set_title(title, fontsize=10)
        axis.grid(alpha=0.3, axis="y")
    axes[1].legend(fontsize=7, loc="upper left")
    used = totals.groupby("protocol")[["accepted", "inconsistent_accepted"]].sum()
    caption = (f"Sums over {frame['seed'].nunique()} seed(s); from every snapshot each protocol "
               "accepted. Inconsistent among accepted (oracle): " + ", ".join(
                   f"{p} {int(used.loc[p, 'inconsistent_accepted'])}/{int(used.loc[p, 'accepted'])}"
                   for p in protocols) + ".")
    return [save(fig, figure_path(root, NAME), caption)]


EXPERIMENT = Experiment(
    name=NAME,
    question="Do deadlocks and invariant violations reported from snapshots of a lock "
             "service really exist?",
    columns=("protocol", "disorder", "seed", "snapshots", "accepted", "inconsistent_accepted",
             "reports", "phantom_deadlocks", "snapshots_with_phantom", "deadlocks_real",
             "deadlocks_found", "deadlocks_missed", "invariant_false_alarms"),
    plan=plan,
    rows=rows,
    draw=draw,
)
