"""``bot-detection``: finding bots from snapshots, per protocol (the paper's Table 3).

The sessions of :mod:`usecases.bots`: chained clients (the relays) show
the newest ticket a backend gave them, open-loop clients start fresh, and
bots (a share ``bot_ratio`` of all clients, taken from the open-loop ones)
show forged tickets. Every protocol runs the same worlds; a client counts as
flagged when any snapshot the protocol accepted shows it presenting a ticket
no backend in that snapshot issued to it. Per run: true and false positives
and negatives over the clients, how many accepted snapshots flagged an
honest client, and how many accepted snapshots the oracle finds
inconsistent.

Its figure (:func:`draw`, drawn from the CSV alone): false positives and
negatives per protocol and bot ratio, beside the outcome the paper's Table 3
reports.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from analysis import paper
from analysis.frames import figure, figure_path, load, save
from beaver.protocols import PROTOCOLS
from experiments.base import Experiment, Plan, Progress, Row
from experiments.sweep import grid
from simulator import WorldConfig
from usecases.bots import bots_among, detect
from usecases.history import observe

NAME = "bot-detection"

BOT_RATIOS = [0.0, 0.05, 0.1]
"""The paper's settings: no bots, 5 % and 10 % of the clients."""


def plan(quick: bool, seeds: int) -> Plan:
    return Plan(
        quick=quick,
        seeds=seeds,
        grid={"protocol": list(PROTOCOLS), "bot_ratio": BOT_RATIOS},
        fixed={"nodes": 8, "gateways": 2, "chained_clients": 20, "open_loop_clients": 20,
               "snapshots": 60 if quick else 400, "tau_min_us": 33.0},
    )


def rows(plan: Plan, progress: Progress) -> Iterator[Row]:
    fixed = plan.fixed
    clients = fixed["chained_clients"] + fixed["open_loop_clients"]
    points = grid(seed=range(1, plan.seeds + 1), **plan.grid)
    for index, point in enumerate(points, start=1):
        config = WorldConfig(
            protocol=point["protocol"], nodes=fixed["nodes"], gateways=fixed["gateways"],
            externals=clients, relays=fixed["chained_clients"], snapshots=fixed["snapshots"],
            seed=point["seed"],
        )
        observed = observe(config)
        bots = bots_among(observed.world.clients, round(point["bot_ratio"] * clients))
        found = detect(observed, bots)
        accepted = observed.accepted()
        progress(f"[{index}/{len(points)}] {point['protocol']} bots {len(bots)}/{clients} "
                 f"seed {point['seed']}: {found.false_positives} false positive(s), "
                 f"{found.false_negatives} false negative(s)")
        yield {
            "protocol": point["protocol"],
            "bot_ratio": point["bot_ratio"],
            "seed": point["seed"],
            "clients": clients,
            "bots": len(bots),
            "snapshots": len(observed.run.statuses),
            "accepted": len(accepted),
            "inconsistent_accepted": sum(
                not observed.verdicts[s.snapshot_id].consistent for s in accepted),
            "true_positives": found.true_positives,
            "false_positives": found.false_positives,
            "true_negatives": found.true_negatives,
            "false_negatives": found.false_negatives,
            "snapshots_with_false_positive": found.snapshots_with_false_positive,
        }


def draw(root: Path) -> list[Path]:
    frame = load(root, NAME)
    protocols = list(dict.fromkeys(frame["protocol"]))
    ratios = sorted(frame["bot_ratio"].unique())
    totals = frame.groupby(["protocol", "bot_ratio"])[
        ["true_positives", "false_positives", "false_negatives", "bots"]].sum()
    fig, (ours, table) = figure(panels=2, width=6.0)
    width = 0.8 / (2 * len(ratios))
    positions = np.arange(len(protocols))
    for i, ratio in enumerate(ratios):
        for j, (column, hatch) in enumerate((("false_positives", None),
                                             ("false_negatives", "//"))):
            values = [totals.loc[(p, ratio), column] for p in protocols]
            offset = (2 * i + j - (2 * len(ratios) - 1) / 2) * width
            ours.bar(positions + offset, values, width, color=plt.cm.tab10(i), hatch=hatch,
                     edgecolor="black", linewidth=0.4,
                     label=f"{ratio:.0%} bots, {column.replace('_', ' ')}")
    ours.set_xticks(positions, protocols, rotation=15)
    ours.set_ylabel("clients wrongly judged (sum over seeds)")
    ours.set_title("ours: simulated, every accepted snapshot")
    ours.grid(alpha=0.3, axis="y")
    ours.set_ylim(0, max(1.0, float(totals[["false_positives", "false_negatives"]].max().max()))
                  * 1.6)
    ours.legend(fontsize=7, ncol=3, loc="upper center")
    _paper_table(table)
    found = ", ".join(
        f"{p} {int(totals.loc[p, 'true_positives'].sum())}/{int(totals.loc[p, 'bots'].sum())}"
        for p in protocols)
    caption = (f"{frame['seed'].nunique()} seed(s), {int(frame['clients'].iloc[0])} clients per "
               f"run. Bots found (true positives / bots): {found}. Right: the outcome "
               f"{paper.SOURCE} report in Table 3 (analysis/reference/).")
    return [save(fig, figure_path(root, NAME), caption)]


def _paper_table(axis) -> None:
    reference = paper.bot_detection()
    protocols = list(dict.fromkeys(reference["protocol"]))
    ratios = sorted(reference["bot_ratio"].unique())
    cells = [[_short(reference[(reference["protocol"] == p) & (reference["bot_ratio"] == r)]
                     ["errors_reported"].iloc[0]) for r in ratios] for p in protocols]
    colours = [["#d8f0d8" if text == "none" else "#f6d5d5" for text in row] for row in cells]
    axis.axis("off")
    drawn = axis.table(cellText=cells, cellColours=colours, rowLabels=protocols,
                       colLabels=[f"{r:.0%} bots" for r in ratios], loc="center",
                       cellLoc="center")
    drawn.auto_set_font_size(False)
    drawn.set_fontsize(9)
    drawn.scale(1.0, 2.6)
    axis.set_title("the paper's Table 3: errors reported (FP, FN)")


def _short(errors: str) -> str:
    """``false positives or false negatives`` -> ``FP or FN``; ``none (...)`` -> ``none``."""
    if errors.startswith("none"):
        return "none"
    return errors.replace("false positives", "FP").replace("false negatives", "FN")


EXPERIMENT = Experiment(
    name=NAME,
    question="Which protocols' snapshots find the bots without accusing honest clients "
             "(the paper's Table 3)?",
    columns=("protocol", "bot_ratio", "seed", "clients", "bots", "snapshots", "accepted",
             "inconsistent_accepted", "true_positives", "false_positives", "true_negatives",
             "false_negatives", "snapshots_with_false_positive"),
    plan=plan,
    rows=rows,
    draw=draw,
)
