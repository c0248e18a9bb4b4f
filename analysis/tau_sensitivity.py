"""Figure for ``tau-sensitivity``: accepted-but-inconsistent snapshots vs a wrong tau_min."""

from __future__ import annotations

from pathlib import Path

from analysis.frames import figure, load, over_seeds, save

NAME = "tau-sensitivity"


def draw(root: Path) -> list[Path]:
    frame = load(root, NAME)
    fig, (left, right) = figure(panels=2)
    panels = ((left, "inconsistent_valid_fraction", "inconsistent among accepted (%)"),
              (right, "valid_fraction", "snapshots accepted (% of started)"))
    for axis, column, label in panels:
        summary = over_seeds(frame, ["true_tau_min_us", "bound_ratio"], column)
        for true_tau, rows in summary.groupby("true_tau_min_us"):
            axis.errorbar(rows["bound_ratio"], 100 * rows["mean"], yerr=100 * rows["std"],
                          marker="o", capsize=3, label=f"true tau_min {true_tau:g} us")
        axis.axvline(1.0, color="gray", linestyle=":", label="bound = true tau_min")
        axis.set_xscale("log", base=2)
        ratios = sorted(frame["bound_ratio"].unique())
        axis.set_xticks(ratios, labels=[f"{ratio:g}" for ratio in ratios])
        axis.set_xlabel("coordinator's tau_min / true tau_min (log)")
        axis.set_ylabel(label)
        axis.grid(alpha=0.3, which="both")
        axis.legend(fontsize=8)
    left.set_title("Broken promise: inconsistent snapshots accepted")
    right.set_title("What a larger bound buys: more accepted")
    total = frame.groupby(frame["bound_ratio"] <= 1)["inconsistent_valid"].sum()
    caption = (f"Mean and std over {frame['seed'].nunique()} seed(s) of a busy world (5 % slow "
               "gateway legs, half of in-group sends start an external chain). Accepted "
               "inconsistent "
               f"snapshots with a correct or cautious bound (ratio <= 1): "
               f"{int(total.get(True, 0))}; with a too-large bound: {int(total.get(False, 0))}.")
    return [save(fig, root / NAME / f"{NAME}.png", caption)]
