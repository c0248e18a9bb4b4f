"""``baselines``: Beaver next to Lai-Yang, Chandy-Lamport and polling in the same worlds.

Every protocol of :data:`beaver.protocols.PROTOCOLS` runs over a grid
of in-group sizes, with and without external causal chains (in-group ->
relay -> gateway -> in-group; rate 0 means the out-group only sends
requests). Per run: the share of snapshots the oracle finds inconsistent,
the share inconsistent among those the protocol accepted, extra messages
(markers) per snapshot, and the share of complete snapshots whose channel
state is exactly the messages in flight.

Its figure (:func:`draw`, drawn from the CSV alone): four protocols side by side
on four measures.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from analysis.frames import figure, figure_path, load, over_seeds, save
from beaver.protocols import PROTOCOLS
from experiments.base import Experiment, Plan, Progress, Row, fraction
from experiments.sweep import grid, outcomes
from simulator import Workload, WorldConfig

NAME = "baselines"

RELAY_SHARE = 0.2
MESSAGE_RATE_HZ = Workload().message_rate_hz


def plan(quick: bool, seeds: int) -> Plan:
    return Plan(
        quick=quick,
        seeds=seeds,
        grid={
            "protocol": list(PROTOCOLS),
            "nodes": [4, 8] if quick else [4, 16, 32],
            "relay_share": [0.0, RELAY_SHARE],
        },
        fixed={"snapshots": 60 if quick else 400, "gateways": 2, "externals": 8,
               "message_rate_hz": MESSAGE_RATE_HZ, "snapshot_rate_hz": 1000.0,
               "tau_min_us": 33.0},
    )


def rows(plan: Plan, progress: Progress) -> Iterator[Row]:
    points = grid(seed=range(1, plan.seeds + 1), **plan.grid)

    def config_of(point: dict) -> WorldConfig:
        chains = point["relay_share"] > 0
        return WorldConfig(
            protocol=point["protocol"],
            nodes=point["nodes"],
            gateways=plan.fixed["gateways"],
            externals=plan.fixed["externals"],
            relays=None if chains else 0,
            snapshots=plan.fixed["snapshots"],
            seed=point["seed"],
            workload=Workload(relay_share=point["relay_share"],
                              snapshot_rate_hz=plan.fixed["snapshot_rate_hz"]),
        )

    for point, config, outcome in outcomes(points, config_of, progress):
        s = outcome.summary
        chain_rate = config.nodes * MESSAGE_RATE_HZ * point["relay_share"] if s.relays else 0.0
        yield {
            "protocol": s.protocol,
            "nodes": s.nodes,
            "external_chain_rate_hz": chain_rate,
            "seed": s.seed,
            "snapshots": s.snapshots,
            "valid": s.valid,
            "complete": s.complete,
            "inconsistent": s.inconsistent,
            "inconsistent_valid": s.inconsistent_valid,
            "inconsistent_fraction": fraction(s.inconsistent, s.snapshots),
            "inconsistent_accepted_fraction": fraction(s.inconsistent_valid, s.valid),
            "extra_messages_per_snapshot": fraction(s.extra_messages, s.snapshots),
            "channel_exact_fraction": fraction(s.complete - s.channel_inexact, s.complete),
        }


MEASURES = {
    "inconsistent_fraction": ("inconsistent snapshots (% of all, oracle)", 100),
    "inconsistent_accepted_fraction": ("inconsistent among accepted (%)", 100),
    "extra_messages_per_snapshot": ("extra messages per snapshot (log)", 1),
    "channel_exact_fraction": ("exact channel state (% of complete)", 100),
}


def draw(root: Path) -> list[Path]:
    frame = load(root, NAME)
    frame = frame.assign(chains=np.where(frame["external_chain_rate_hz"] > 0, "on", "off"))
    protocols = list(dict.fromkeys(frame["protocol"]))
    combos = frame[["nodes", "chains"]].drop_duplicates().sort_values(["nodes", "chains"])
    combos = list(combos.itertuples(index=False, name=None))
    fig, axes = figure(panels=2, rows=2, width=6.0)
    sizes = sorted({nodes for nodes, _ in combos})
    width = 0.8 / len(combos)
    positions = np.arange(len(protocols))
    for axis, (column, (label, scale)) in zip(axes, MEASURES.items(), strict=True):
        summary = over_seeds(frame, ["protocol", "nodes", "chains"], column)
        for i, (nodes, chains) in enumerate(combos):
            rows = summary[(summary["nodes"] == nodes) & (summary["chains"] == chains)]
            values = rows.set_index("protocol").reindex(protocols)
            axis.bar(positions + (i - (len(combos) - 1) / 2) * width,
                     scale * values["mean"].fillna(0), width, yerr=scale * values["std"],
                     color=plt.cm.tab10(sizes.index(nodes)), hatch="//" if chains == "on" else None,
                     edgecolor="black", linewidth=0.4,
                     label=f"{nodes} nodes, external chains {chains}")
        axis.set_xticks(positions, protocols, rotation=20)
        axis.set_ylabel(label)
        axis.grid(alpha=0.3, axis="y")
        if column == "extra_messages_per_snapshot":
            axis.set_yscale("symlog", linthresh=1)
    axes[0].legend(fontsize=7)
    fig.suptitle("Beaver and baselines in the same simulated worlds")
    caption = (f"Mean and std over {frame['seed'].nunique()} seed(s); hatched: out-group relays "
               "carry external causal chains. Accepted = valid by the protocol's own rule. "
               f"{_accepted_line(frame)}")
    return [save(fig, figure_path(root, NAME), caption)]


def _accepted_line(frame: pd.DataFrame) -> str:
    totals = frame.groupby("protocol")[["inconsistent_valid", "valid"]].sum()
    return "Inconsistent among accepted: " + ", ".join(
        f"{name} {int(row.inconsistent_valid)}/{int(row.valid)}"
        for name, row in totals.iterrows()
    ) + "."


EXPERIMENT = Experiment(
    name=NAME,
    question="How do Beaver, Lai-Yang, Chandy-Lamport and polling compare on consistency, "
             "extra messages and channel state, with and without external causal chains?",
    columns=("protocol", "nodes", "external_chain_rate_hz", "seed", "snapshots", "valid",
             "complete", "inconsistent", "inconsistent_valid", "inconsistent_fraction",
             "inconsistent_accepted_fraction", "extra_messages_per_snapshot",
             "channel_exact_fraction"),
    plan=plan,
    rows=rows,
    draw=draw,
)
