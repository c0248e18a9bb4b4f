"""Analysis: figures drawn from the experiments' CSV results (never from run objects).

One module per experiment, each with ``draw(root) -> [png paths]`` that
reads ``root/<name>/<name>.csv`` with pandas (mean and spread over seeds),
draws with matplotlib's Agg backend, puts the paper's numbers
(:mod:`analysis.paper`, from ``analysis/reference/``) dashed beside ours
where they compare, and writes PNGs next to the CSV with a caption line.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from analysis import (
    baselines,
    bot_detection,
    deadlock,
    effective_rate,
    emulated_timings,
    max_rate,
    tau_sensitivity,
    update_bound,
)

FIGURES: dict[str, Callable[[Path], list[Path]]] = {
    module.NAME: module.draw
    for module in (effective_rate, update_bound, max_rate, baselines, tau_sensitivity,
                   emulated_timings, bot_detection, deadlock)
}


def draw(name: str, root: Path) -> list[Path]:
    """Draw the figures of experiment ``name`` from the results under ``root``."""
    return FIGURES[name](root)
