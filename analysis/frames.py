"""Reading an experiment's CSV and the shared figure chores: aggregation, captions, saving.

Figures are drawn from the CSV files alone (never from simulation objects),
with the Agg backend so no display is needed.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

PAPER_STYLE = {"linestyle": "--", "linewidth": 1.3, "alpha": 0.85}
"""How the paper's series are drawn: dashed, beside our solid ones."""
CAPTION_POINTS = 8.5
"""The caption's font size."""
CAPTION_CHARS_PER_INCH = 16
"""About how many caption characters fit in an inch of the figure's width."""


def results_csv(root: Path, name: str) -> Path:
    return root / name / f"{name}.csv"


def load(root: Path, name: str) -> pd.DataFrame:
    """The tidy results of experiment ``name`` under the results root ``root``."""
    path = results_csv(root, name)
    if not path.is_file():
        raise FileNotFoundError(f"no results at {path}")
    frame = pd.read_csv(path)
    if frame.empty:
        raise FileNotFoundError(f"results at {path} have no rows")
    return frame


def over_seeds(frame: pd.DataFrame, by: list[str], value: str) -> pd.DataFrame:
    """Mean, standard deviation, min, max and count of ``value`` per ``by`` group (over seeds)."""
    grouped = frame.groupby(by, as_index=False)[value]
    summary = grouped.agg(mean="mean", std="std", low="min", high="max", runs="count")
    summary["std"] = summary["std"].fillna(0.0)
    return summary


def figure(panels: int = 1, rows: int = 1, width: float = 6.4) -> tuple[Figure, list]:
    """A figure of ``rows`` x ``panels`` axes (row by row) with room below for a caption."""
    fig, axes = plt.subplots(
        rows, panels, figsize=(width * panels, 4.4 * rows + 0.4), squeeze=False
    )
    return fig, list(axes.flat)


def figure_path(root: Path, name: str) -> Path:
    """Where experiment ``name``'s figure goes: beside its CSV."""
    return root / name / f"{name}.png"


def save(fig: Figure, path: Path, caption: str) -> Path:
    """Write ``fig`` with ``caption`` under it to ``path`` (PNG) and close it.

    The caption is wrapped to the figure's width, and the axes are laid out above
    as many lines as it takes, so that no caption line covers an axis label."""
    width, height = fig.get_size_inches()
    lines = textwrap.wrap(caption, int(width * CAPTION_CHARS_PER_INCH)) or [""]
    fig.text(0.01, 0.01, "\n".join(lines), fontsize=CAPTION_POINTS, ha="left", va="bottom")
    caption_inches = (len(lines) * 1.25 + 1) * CAPTION_POINTS / 72
    fig.tight_layout(rect=(0, min(caption_inches / height, 0.5), 1, 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
