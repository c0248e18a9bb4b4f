"""Figure for ``update-bound``: t1 - t0 vs the real spread of gateway updates (Fig 13)."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from analysis import paper
from analysis.frames import PAPER_STYLE, figure, load, save

NAME = "update-bound"
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
    ticks = sorted(set(frame["gateways"]) | set(theirs["gateways"]))
    left.set_xticks(ticks, labels=[str(tick) for tick in ticks])
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
    return [save(fig, root / NAME / f"{NAME}.png", caption)]
