"""``update-bound`` (the paper's Fig 13): is t1 - t0 an upper bound on the real update spread?

The coordinator measures t1 - t0 on its own clock: from sending the first
update to the last gateway's acknowledgement. The quantity Beaver's
validity argument needs is the real spread of the moments the gateways
started stamping the new id: from the first gateway that had it (by the
coordinator's update or earlier, by optimistic marking) to the last. The
simulator knows those moments: this experiment records, for every gateway
and snapshot, the simulated time at which the gateway's id first reached
the snapshot's id, and writes one row per snapshot.

The simulator's :class:`~simulator.Run` does not carry gateway update
times, so the world is built with :class:`~simulator.World` and each
gateway's ``set_id`` (the one call that raises a gateway's id, whether the
coordinator or optimistic marking asks) is wrapped to note the time.

Its figure (:func:`draw`, drawn from the CSV alone): t1 - t0 vs the real spread
of gateway updates (Fig 13).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.ticker import NullLocator

from analysis import paper
from analysis.frames import PAPER_STYLE, figure, figure_path, load, save
from beaver.gateway import Gateway
from experiments.base import Experiment, Plan, Progress, Row
from experiments.sweep import grid
from simulator import US, Workload, World, WorldConfig

NAME = "update-bound"

SNAPSHOT_RATE_HZ = 4096


def plan(quick: bool, seeds: int) -> Plan:
    return Plan(
        quick=quick,
        seeds=seeds,
        grid={"gateways": [2, 16] if quick else [2, 4, 8, 16]},
        fixed={"snapshots": 100 if quick else 2000, "snapshot_rate_hz": SNAPSHOT_RATE_HZ,
               "nodes": 16, "tau_min_us": 33.0},
    )


@dataclass
class Adoption:
    """When a gateway first stamped a snapshot id, and whether optimistic marking made it."""

    time: float
    optimistic: bool


class AdoptionRecorder:
    """Per snapshot id and gateway, the :class:`Adoption` of that id (filled as ``world`` runs).

    ``set_id`` is the one call that raises a gateway's id: the coordinator's
    update calls it directly, optimistic marking through ``observe_ingroup``.
    """

    def __init__(self, world: World):
        self.world = world
        self.adopted: dict[int, dict[str, Adoption]] = defaultdict(dict)
        self._observing = False
        for gateway in world.gateways:
            gateway.set_id = self._recording_set_id(gateway)
            gateway.observe_ingroup = self._flagging_observe(gateway)

    def _recording_set_id(self, gateway: Gateway):
        original = gateway.set_id

        def set_id(snapshot_id: int) -> bool:
            before = gateway.current
            changed = original(snapshot_id)
            for k in range(before + 1, gateway.current + 1):
                self.adopted[k][gateway.name] = Adoption(self.world.engine.now, self._observing)
            return changed

        return set_id

    def _flagging_observe(self, gateway: Gateway):
        original = gateway.observe_ingroup

        def observe_ingroup(wire: int) -> bool:
            self._observing = True
            try:
                return original(wire)
            finally:
                self._observing = False

        return observe_ingroup


def rows(plan: Plan, progress: Progress) -> Iterator[Row]:
    points = grid(seed=range(1, plan.seeds + 1), **plan.grid)
    for index, point in enumerate(points, start=1):
        world = World(WorldConfig(
            gateways=point["gateways"],
            nodes=plan.fixed["nodes"],
            snapshots=plan.fixed["snapshots"],
            seed=point["seed"],
            workload=Workload(snapshot_rate_hz=SNAPSHOT_RATE_HZ),
        ))
        recorder = AdoptionRecorder(world)
        run = world.run()
        progress(f"[{index}/{len(points)}] gateways={point['gateways']} seed={point['seed']}: "
                 f"{len(run.statuses)} snapshots")
        for status in run.statuses:
            adoptions = recorder.adopted.get(status.snapshot_id, {})
            if status.update_time is None or len(adoptions) < point["gateways"]:
                continue
            times = [adoption.time for adoption in adoptions.values()]
            spread = max(times) - min(times)
            yield {
                "gateways": point["gateways"],
                "seed": point["seed"],
                "snapshot_id": status.snapshot_id,
                "t1_t0_us": round(status.update_time / US, 4),
                "gateway_spread_us": round(spread / US, 4),
                "optimistic_adoptions": sum(a.optimistic for a in adoptions.values()),
                "bound_holds": status.update_time >= spread,
                "valid": bool(status.valid),
            }


QUANTILES = {0.5: ("p50", "o"), 0.99: ("p99", "^"), 1.0: ("max", "s")}
SERIES = {"t1_t0_us": ("t1 - t0 (coordinator)", "tab:blue"),
          "gateway_spread_us": ("gateway update spread (truth)", "tab:orange")}
FLOOR_US = 1e-3
"""Spreads below this (gateways updated at the same simulated instant) are drawn at it."""


def quantiles(frame: pd.DataFrame) -> pd.DataFrame:
    """Per |G|, the quantiles of both series over every snapshot of every seed."""
    rows = []
    for gateways, group in frame.groupby("gateways"):
        for share in QUANTILES:
            rows.append({
                "gateways": gateways,
                "quantile": share,
                **{column: group[column].quantile(share) for column in SERIES},
            })
    return pd.DataFrame(rows)


def draw(root: Path) -> list[Path]:
    frame = load(root, NAME)
    ours, theirs = quantiles(frame), paper.update_bound()
    fig, (left, right) = figure(panels=2)
    for column, (label, color) in SERIES.items():
        for share, (name, marker) in QUANTILES.items():
            mine = ours[ours["quantile"] == share]
            left.plot(mine["gateways"], mine[column].clip(lower=FLOOR_US), color=color,
                      marker=marker, label=f"ours {name}: {label}")
            same = theirs[theirs["quantile"] == share]
            left.plot(same["gateways"], same[column].clip(lower=FLOOR_US), color=color,
                      marker=marker, markerfacecolor="none", **PAPER_STYLE)
    left.plot([], [], color="gray", label="paper (same quantile)", **PAPER_STYLE)
    left.set_yscale("log")
    left.set_xscale("log", base=2)
    ticks = sorted({int(g) for g in frame["gateways"]} | {int(g) for g in theirs["gateways"]})
    left.set_xticks(ticks, labels=[str(tick) for tick in ticks])
    left.xaxis.set_minor_locator(NullLocator())
    left.set_xlabel("gateways |G|")
    left.set_ylabel("time (us, log)")
    left.grid(alpha=0.3, which="both")
    left.legend(fontsize=6.5)
    left.set_title("Quantiles per |G| (cf. paper Fig 13)")

    colors = plt.cm.viridis
    sizes = sorted(frame["gateways"].unique())
    for i, gateways in enumerate(sizes):
        group = frame[frame["gateways"] == gateways]
        right.scatter(group["t1_t0_us"], group["gateway_spread_us"].clip(lower=FLOOR_US), s=5,
                      alpha=0.5, color=colors(i / max(1, len(sizes) - 1) * 0.9),
                      label=f"|G| = {gateways}")
    top = frame["t1_t0_us"].max() * 1.2
    right.plot([FLOOR_US, top], [FLOOR_US, top], color="black", linewidth=1,
               label="spread = t1 - t0")
    right.set_xscale("log")
    right.set_yscale("log")
    right.set_xlabel("t1 - t0 seen by the coordinator (us, log)")
    right.set_ylabel("real spread of gateway updates (us, log)")
    right.grid(alpha=0.3, which="both")
    right.legend(fontsize=7, markerscale=3)
    right.set_title("Every snapshot: the bound holds below the line")
    held = int(frame["bound_holds"].sum())
    caption = (f"Left: quantiles over {len(frame)} snapshots ({frame['seed'].nunique()} seed(s) "
               f"per |G|); dashed, hollow: {paper.SOURCE}. Right: one point per snapshot. "
               f"t1 - t0 >= real spread in {held} of {len(frame)} snapshots.")
    return [save(fig, figure_path(root, NAME), caption)]


EXPERIMENT = Experiment(
    name=NAME,
    question="Does t1 - t0, as the coordinator sees it, bound the real spread of the moments "
             "the gateways start stamping a new id, in every snapshot?",
    columns=("gateways", "seed", "snapshot_id", "t1_t0_us", "gateway_spread_us",
             "optimistic_adoptions", "bound_holds", "valid"),
    plan=plan,
    rows=rows,
    draw=draw,
)
