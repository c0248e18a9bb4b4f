"""Running many simulated worlds one after another, with a progress line for each."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from typing import Any

from experiments.base import Progress
from simulator import Outcome, WorldConfig, simulate


def gateway_counts(quick: bool) -> list[int]:
    """The |G| axis of the paper's gateway sweeps (Figs 10 and 11): 2 to 16, or its ends."""
    return [2, 16] if quick else [2, 4, 6, 8, 10, 12, 14, 16]


def grid(**axes: Iterable[Any]) -> list[dict[str, Any]]:
    """Every combination of the axes' values, as dicts (the last axis varies fastest)."""
    names = list(axes)
    return [dict(zip(names, values, strict=True)) for values in itertools.product(*axes.values())]


def outcomes(
    points: list[dict[str, Any]], config_of, progress: Progress
) -> Iterator[tuple[dict[str, Any], WorldConfig, Outcome]]:
    """Simulate ``config_of(point)`` for every point, reporting progress as it goes."""
    total = len(points)
    for index, point in enumerate(points, start=1):
        config = config_of(point)
        outcome = simulate(config)
        label = " ".join(f"{key}={value}" for key, value in point.items())
        progress(f"[{index}/{total}] {label}: {outcome.summary.wall_s:.2f} s")
        yield point, config, outcome
