"""Figure for ``emulated-timings``: CDFs of t1 - t0 per |G| and of relayed chain time (Fig 12, 13).

Both panels share one true-scale log axis in microseconds, so the paper's
numbers (dashed, drawn as CDFs through the quantiles it reports) sit where
they belong: our switches are userspace Open vSwitch bridges in one
process and our relays add an emulated WAN delay, so our times are
milliseconds where the paper's are microseconds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from analysis import paper
from analysis.frames import PAPER_STYLE, figure, load, save

NAME = "emulated-timings"
FIG13_QUANTILES = {"p0": 0.0, "p50": 0.5, "p90": 0.9, "p99": 0.99, "max": 1.0}
FIG12_QUANTILES = {"min": 0.0, "p1": 0.01, "p50": 0.5, "p90": 0.9, "p99": 0.99, "max": 1.0}
COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple")


def paper_update_cdf(gateways: int) -> tuple[list[float], list[float]] | None:
    """Fig 13's t1 - t0 quantiles at ``gateways`` as CDF points (None if the paper has none)."""
    wide = pd.read_csv(paper.REFERENCE / "paper_fig13_bound.csv")
    row = wide[wide["gateways"] == gateways]
    if row.empty:
        return None
    values = [float(row[f"t1_t0_{label}_us"].iloc[0]) for label in FIG13_QUANTILES]
    return values, list(FIG13_QUANTILES.values())


def paper_tau_cdf() -> tuple[list[float], list[float]]:
    """Fig 12's intra-data-center tau quantiles as CDF points."""
    wide = pd.read_csv(paper.REFERENCE / "paper_fig12_tau.csv").set_index("setting")
    return ([float(wide.loc["intra-dc", f"{label}_us"]) for label in FIG12_QUANTILES],
            list(FIG12_QUANTILES.values()))


def cdf(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """The empirical CDF of ``values``: sorted values and the share at or below each."""
    ordered = np.sort(values.dropna().to_numpy())
    return ordered, np.arange(1, len(ordered) + 1) / len(ordered)


def share_below_tau(updates: pd.DataFrame) -> dict[int, tuple[int, int]]:
    """Per |G|: snapshots with t1 - t0 < the run's measured tau_min, and all snapshots."""
    return {int(gateways): (int((group["t1_t0_us"] < group["tau_min_us"]).sum()), len(group))
            for gateways, group in updates.groupby("gateways")}


def draw(root: Path) -> list[Path]:
    frame = load(root, NAME)
    updates = frame[frame["kind"] == "update"]
    chains = frame[frame["kind"] == "chain"]
    fig, (left, right) = figure(panels=2)
    for i, (gateways, group) in enumerate(updates.groupby("gateways")):
        color = COLORS[i % len(COLORS)]
        left.step(*cdf(group["t1_t0_us"]), where="post", color=color,
                  label=f"ours |G| = {gateways}")
        theirs = paper_update_cdf(int(gateways))
        if theirs is not None:
            left.plot(*theirs, color=color, label=f"paper |G| = {gateways}", **PAPER_STYLE)
        tau = group["tau_min_us"].min()
        left.axvline(tau, color=color, linestyle=":", linewidth=1.2,
                     label=f"our measured tau_min, |G| = {gateways} ({tau / 1e3:.1f} ms)")
    left.set_xscale("log")
    left.set_xlabel("t1 - t0 (us, log)")
    left.set_ylabel("share of snapshots")
    left.grid(alpha=0.3, which="both")
    left.legend(fontsize=7)
    left.set_title("Gateway update time t1 - t0 (cf. paper Fig 13)")

    for i, (gateways, group) in enumerate(chains.groupby("gateways")):
        right.step(*cdf(group["chain_us"]), where="post", color=COLORS[i % len(COLORS)],
                   label=f"ours |G| = {gateways} ({len(group)} chains)")
    right.plot(*paper_tau_cdf(), color="gray", label="paper intra-DC tau", **PAPER_STYLE)
    right.set_xscale("log")
    right.set_xlabel("external chain time tau (us, log)")
    right.set_ylabel("share of relayed chains")
    right.grid(alpha=0.3, which="both")
    right.legend(fontsize=7)
    right.set_title("Relayed external chain time (cf. paper Fig 12)")

    shares = "; ".join(f"|G| = {g}: {below} of {total}"
                       for g, (below, total) in share_below_tau(updates).items())
    chain_min = f"{chains['chain_us'].min() / 1e3:.2f} ms" if not chains.empty else "none"
    caption = (f"Emulated data center (userspace Open vSwitch, one process): our times are "
               f"milliseconds where the paper's are microseconds (dashed: {paper.SOURCE}). "
               f"Snapshots with t1 - t0 < the run's measured tau_min: {shares}. "
               f"Shortest relayed chain: {chain_min}.")
    return [save(fig, root / NAME / f"{NAME}.png", caption)]
