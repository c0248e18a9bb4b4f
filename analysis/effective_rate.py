"""Figure for ``effective-rate``: share of snapshots accepted vs |G|, per frequency (Fig 11)."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt

from analysis import paper
from analysis.frames import PAPER_STYLE, figure, load, over_seeds, save

NAME = "effective-rate"


def draw(root: Path) -> list[Path]:
    frame = load(root, NAME)
    ours = over_seeds(frame, ["snapshot_rate_hz", "gateways"], "valid_fraction")
    theirs = paper.effective_rate()
    rates = sorted(ours["snapshot_rate_hz"].unique())
    colors = plt.cm.viridis([i / max(1, len(rates) - 1) * 0.85 for i in range(len(rates))])
    fig, (axis,) = figure()
    for rate, color in zip(rates, colors, strict=True):
        mine = ours[ours["snapshot_rate_hz"] == rate]
        axis.errorbar(mine["gateways"], 100 * mine["mean"], yerr=100 * mine["std"],
                      color=color, marker="o", capsize=3, label=f"ours, {rate:,.0f} Hz")
        same = theirs[theirs["snapshot_rate_hz"] == rate].sort_values("gateways")
        if not same.empty:
            axis.plot(same["gateways"], 100 * same["valid_fraction"], color=color,
                      label=f"paper, {rate:,.0f} Hz", **PAPER_STYLE)
    axis.set_xlabel("gateways |G|")
    axis.set_ylabel("snapshots accepted as valid (% of started)")
    axis.set_xticks(sorted(ours["gateways"].unique()))
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7, ncol=2)
    axis.set_title("Effective snapshot rate (cf. paper Fig 11)")
    accepted, bad = int(frame["valid"].sum()), int(frame["inconsistent_valid"].sum())
    caption = (f"Share of started snapshots with t1 - t0 < tau_min (33 us), mean and std over "
               f"{frame['seed'].nunique()} seed(s); dashed: {paper.SOURCE}. "
               f"Oracle: {bad} inconsistent among {accepted} accepted snapshots.")
    return [save(fig, root / NAME / f"{NAME}.png", caption)]
