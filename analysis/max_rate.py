"""Figure for ``max-rate``: sustained snapshot rate vs |G|, with and without parallelism."""

from __future__ import annotations

from pathlib import Path

from analysis import paper
from analysis.frames import PAPER_STYLE, figure, load, over_seeds, save

NAME = "max-rate"


def draw(root: Path) -> list[Path]:
    frame = load(root, NAME)
    ours = over_seeds(frame, ["window", "gateways"], "sustained_rate_hz")
    theirs = paper.max_rate()
    windows = sorted(ours["window"].unique())
    fig, (axis,) = figure()
    colors = {True: "tab:blue", False: "tab:red"}
    for window in windows:
        parallel = window > 1
        mine = ours[ours["window"] == window]
        axis.errorbar(mine["gateways"], mine["mean"], yerr=mine["std"], marker="o", capsize=3,
                      color=colors[parallel], label=f"ours, window {window}")
    for parallel, label in ((True, "with parallelism"), (False, "without parallelism")):
        same = theirs[theirs["parallel"] == parallel]
        axis.plot(same["gateways"], same["sustained_rate_hz"], color=colors[parallel],
                  marker="s", markerfacecolor="none", label=f"paper, {label}", **PAPER_STYLE)
    axis.set_yscale("log")
    axis.set_xlabel("gateways |G|")
    axis.set_ylabel("sustained snapshot rate (Hz, log)")
    axis.set_xticks(sorted(ours["gateways"].unique()))
    axis.grid(alpha=0.3, which="both")
    axis.legend(fontsize=8)
    axis.set_title("Maximum snapshot rate (cf. paper Fig 10)")
    finish = frame.groupby("window")["mean_complete_us"].mean()
    caption = (f"Starts per second when snapshots are offered at 10 MHz, mean and std over "
               f"{frame['seed'].nunique()} seed(s); dashed: {paper.SOURCE}. Mean time to "
               "complete a snapshot: " + ", ".join(
                   f"window {w}: {t:.0f} us" for w, t in finish.items()) + ".")
    return [save(fig, root / NAME / f"{NAME}.png", caption)]
