"""Figure for ``bot-detection``: false positives and negatives per protocol and bot ratio,
beside the outcome the paper's Table 3 reports."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from analysis import paper
from analysis.frames import figure, load, save

NAME = "bot-detection"


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
    return [save(fig, root / NAME / f"{NAME}.png", caption)]


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
