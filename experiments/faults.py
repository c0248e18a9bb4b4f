"""``faults``: does any protocol accept an inconsistent snapshot when things go wrong?

Every fault of :class:`simulator.Faults` is swept over a few rates, for
every protocol, in a busy world (half of in-group sends start an external
chain) whose coordinator checks the world's true tau_min. Two kinds of
fault break a stated assumption of Beaver's (``docs/faults.md``): external
chains shorter than tau_min, and a gateway that stamps an older id after
it acknowledged a newer one. The rest, Beaver must survive with no
inconsistent snapshot accepted. Per run: snapshots started, accepted
(valid), complete, inconsistent (oracle), inconsistent among the accepted,
and what the faults did (revoked snapshots, failed updates, re-sent
commands, gateway rollbacks, short chains).

Its figure (:func:`draw`, drawn from the CSV alone): accepted-inconsistent
snapshots and the accepted share per fault and rate, one bar per protocol.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from analysis.frames import figure, load, save
from beaver.protocols import PROTOCOLS
from experiments.base import Experiment, Plan, Progress, Row, fraction
from experiments.sweep import grid, outcomes
from simulator import US, Faults, Workload, WorldConfig

NAME = "faults"

WORKLOAD = Workload(snapshot_rate_hz=4096, relay_share=0.5, message_rate_hz=10_000,
                    request_rate_hz=10_000)


def _everything(level: float) -> Faults:
    """Every fault Beaver assumes it survives, at once (``level`` scales them)."""
    return Faults(control_loss=0.02 * level, control_duplicate=0.02 * level,
                  control_reorder=True, gateway_crash_rate_hz=50 * level,
                  node_crash_rate_hz=20 * level, data_loss=0.02 * level,
                  data_duplicate=0.02 * level, clock_skew=10 * US * level)


SWEEP: dict[str, tuple[list[float], Callable[[float], Faults], bool]] = {
    "none": ([0], lambda rate: Faults(), False),
    "control-loss": ([0.01, 0.05, 0.2], lambda rate: Faults(control_loss=rate), False),
    "control-duplicate": ([0.05, 0.2, 0.5], lambda rate: Faults(control_duplicate=rate), False),
    "control-reorder": ([1], lambda rate: Faults(control_reorder=True), False),
    "gateway-crash-rate-hz": (
        [50, 200, 1000], lambda rate: Faults(gateway_crash_rate_hz=rate), False),
    "node-crash-rate-hz": ([20, 100, 500], lambda rate: Faults(node_crash_rate_hz=rate), False),
    "data-loss": ([0.01, 0.05, 0.2], lambda rate: Faults(data_loss=rate), False),
    "data-duplicate": ([0.05, 0.2, 0.5], lambda rate: Faults(data_duplicate=rate), False),
    "clock-skew-us": ([5, 50, 500], lambda rate: Faults(clock_skew=rate * US), False),
    "everything": ([1, 2, 4], _everything, False),
    "gateway-restart-old-id": (
        [50, 200, 1000],
        lambda rate: Faults(gateway_crash_rate_hz=rate, gateway_restart="old-id"), True),
    "gateway-restart-silent-old-id": (
        [50, 200, 1000],
        lambda rate: Faults(gateway_crash_rate_hz=rate, gateway_restart="silent-old-id"), True),
    "chain-violation-share": (
        [0.01, 0.05, 0.2], lambda rate: Faults(chain_violation_share=rate), True),
    "chain-violation-learned": (
        [0.01, 0.05, 0.2],
        lambda rate: Faults(chain_violation_share=rate, learn_tau_min=True), True),
}
"""Per fault: its rates, the :class:`Faults` of a rate, and whether it breaks an assumption."""

QUICK = ("none", "control-loss", "gateway-restart-silent-old-id", "chain-violation-share")


def plan(quick: bool, seeds: int) -> Plan:
    faults = [name for name in SWEEP if not quick or name in QUICK]
    return Plan(
        quick=quick,
        seeds=seeds,
        grid={
            "protocol": list(PROTOCOLS),
            "fault": faults,
        },
        fixed={"snapshots": 60 if quick else 1000, "gateways": 4, "nodes": 8,
               "rates": {name: SWEEP[name][0][-1:] if quick else SWEEP[name][0]
                         for name in faults},
               "tau_min_us": 33.0,
               "workload": {key: getattr(WORKLOAD, key) for key in (
                   "snapshot_rate_hz", "relay_share", "message_rate_hz", "request_rate_hz")}},
    )


def rows(plan: Plan, progress: Progress) -> Iterator[Row]:
    points = [
        {**point, "rate": rate}
        for point in grid(seed=range(1, plan.seeds + 1), **plan.grid)
        for rate in plan.fixed["rates"][point["fault"]]
    ]

    def config_of(point: dict) -> WorldConfig:
        return WorldConfig(
            protocol=point["protocol"],
            gateways=plan.fixed["gateways"],
            nodes=plan.fixed["nodes"],
            snapshots=plan.fixed["snapshots"],
            tau_min=plan.fixed["tau_min_us"] * US,
            seed=point["seed"],
            workload=WORKLOAD,
            faults=SWEEP[point["fault"]][1](point["rate"]),
        )

    for point, _, outcome in outcomes(points, config_of, progress):
        s = outcome.summary
        yield {
            "fault": point["fault"],
            "rate": point["rate"],
            "breaks_assumption": SWEEP[point["fault"]][2],
            "protocol": s.protocol,
            "seed": s.seed,
            "snapshots": s.snapshots,
            "requested": s.requested,
            "valid": s.valid,
            "complete": s.complete,
            "inconsistent": s.inconsistent,
            "inconsistent_valid": s.inconsistent_valid,
            "revoked": s.revoked,
            "inconsistent_revoked": s.inconsistent_revoked,
            "channel_inexact": s.channel_inexact,
            "valid_fraction": fraction(s.valid, s.snapshots),
            "inconsistent_valid_fraction": fraction(s.inconsistent_valid, s.valid),
            "assumption_broken": s.assumption_broken,
            "failed_updates": s.failed_updates,
            "retransmitted": s.retransmitted,
            "gateway_rollbacks": s.gateway_rollbacks,
            "short_chains": s.short_chains,
            "overdue_packets": s.overdue_packets,
            "wall_s": s.wall_s,
        }


def draw(root: Path) -> list[Path]:
    frame = load(root, NAME)
    frame = frame.assign(case=frame["fault"] + " " + frame["rate"].map("{:g}".format))
    cases = list(dict.fromkeys(frame["case"]))
    protocols = list(dict.fromkeys(frame["protocol"]))
    totals = frame.groupby(["case", "protocol"])[["inconsistent_valid", "valid",
                                                  "snapshots"]].sum()
    breaking = frame.groupby("case")["breaks_assumption"].first().reindex(cases)
    fig, (top, bottom) = figure(panels=1, rows=2, width=max(12.0, 0.42 * len(cases)))
    positions = np.arange(len(cases))
    width = 0.8 / len(protocols)
    for i, name in enumerate(protocols):
        values = totals.xs(name, level="protocol").reindex(cases).fillna(0)
        offset = positions + (i - (len(protocols) - 1) / 2) * width
        style = {"color": plt.cm.tab10(i), "edgecolor": "black", "linewidth": 0.3,
                 "label": name}
        top.bar(offset, values["inconsistent_valid"], width, **style)
        bottom.bar(offset, 100 * values["valid"] / values["snapshots"].where(
            values["snapshots"] > 0), width, **style)
    for axis in (top, bottom):
        for x, broken in zip(positions, breaking, strict=True):
            if broken:
                axis.axvspan(x - 0.5, x + 0.5, color="red", alpha=0.08, linewidth=0)
        axis.set_xticks(positions, cases, rotation=60, ha="right", fontsize=7)
        axis.set_xlim(-0.6, len(cases) - 0.4)
        axis.grid(alpha=0.3, axis="y")
    top.set_yscale("symlog", linthresh=1)
    top.set_ylabel("accepted but inconsistent (sum over seeds)")
    top.set_title("Accepted inconsistent snapshots per fault and rate "
                  "(shaded: the fault breaks a stated assumption)")
    bottom.set_ylabel("accepted (% of started)")
    top.legend(fontsize=8, ncols=len(protocols))
    return [save(fig, root / NAME / f"{NAME}.png", _caption(frame))]


def _caption(frame: pd.DataFrame) -> str:
    beaver = frame[frame["protocol"] == "beaver"]
    kept = beaver[~beaver["breaks_assumption"].astype(bool)]
    broken = beaver[beaver["breaks_assumption"].astype(bool)]
    return (f"{frame['seed'].nunique()} seed(s), coordinator tau_min = the world's. Beaver under "
            f"the faults it assumes it survives: {int(kept['inconsistent_valid'].sum())} "
            f"accepted inconsistent of {int(kept['valid'].sum()):,} accepted, "
            f"{int(kept['snapshots'].sum()):,} started; under assumption-breaking faults: "
            f"{int(broken['inconsistent_valid'].sum())} accepted inconsistent, "
            f"{int(broken['inconsistent_revoked'].sum())} more caught by revocation.")


EXPERIMENT = Experiment(
    name=NAME,
    question="Under lost, duplicated and reordered control messages, crashes, lost and "
             "duplicated data, clock skew and short chains, does any protocol accept an "
             "inconsistent snapshot, and how many does it still accept?",
    columns=("fault", "rate", "breaks_assumption", "protocol", "seed", "snapshots",
             "requested", "valid", "complete", "inconsistent", "inconsistent_valid", "revoked",
             "inconsistent_revoked", "channel_inexact", "valid_fraction",
             "inconsistent_valid_fraction", "assumption_broken", "failed_updates",
             "retransmitted", "gateway_rollbacks", "short_chains", "overdue_packets", "wall_s"),
    plan=plan,
    rows=rows,
    default_seeds=3,
    draw=draw,
)
