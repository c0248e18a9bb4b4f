"""Figure for ``baselines``: four protocols side by side on four measures."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from analysis.frames import figure, load, over_seeds, save

NAME = "baselines"
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
    return [save(fig, root / NAME / f"{NAME}.png", caption)]


def _accepted_line(frame: pd.DataFrame) -> str:
    totals = frame.groupby("protocol")[["inconsistent_valid", "valid"]].sum()
    return "Inconsistent among accepted: " + ", ".join(
        f"{name} {int(row.inconsistent_valid)}/{int(row.valid)}"
        for name, row in totals.iterrows()
    ) + "."
