"""Figure for ``deadlock``: phantom and real deadlocks, and the invariant check's false
alarms, per protocol, from snapshots of the lock service."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from analysis.frames import figure, load, save

NAME = "deadlock"
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
    return [save(fig, root / NAME / f"{NAME}.png", caption)]
