"""Reading an experiment's CSV and the shared figure chores: aggregation, captions, saving.

Figures are drawn from the CSV files alone (never from simulation objects),
with the Agg backend so no display is needed.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

PAPER_STYLE = {"linestyle": "--", "linewidth": 1.3, "alpha": 0.85}
"""How the paper's series are drawn: dashed, beside our solid ones."""


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
    """Write ``fig`` with ``caption`` under it to ``path`` (PNG) and close it."""
    fig.text(0.01, 0.01, caption, fontsize=8.5, ha="left", va="bottom", wrap=True)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
