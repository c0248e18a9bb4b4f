"""Summary statistics the testbed reports, one definition each.

:func:`start_rate` is how many snapshots were started per second, from the
first start to the last (after the first ``skip``, which may have filled an
empty pipeline at once). :func:`percentile` is the nearest-rank percentile: the smallest observed
value with at least ``share`` of the values at or below it (so ``1.0`` is the
maximum, and every result is a value that was measured). It serves the
simulator's and ``beaver run``'s summaries, the key-value clients' latencies
and the benchmarks alike. The package imports nothing.
"""

from __future__ import annotations

import math
from collections.abc import Iterable


def start_rate(starts: Iterable[float], skip: int = 0) -> float | None:
    """Starts per second from the first start to the last, the first ``skip`` starts left
    out; None if fewer than two remain or no time passed between them."""
    ordered = sorted(starts)[skip:]
    if len(ordered) < 2 or ordered[-1] <= ordered[0]:
        return None
    return (len(ordered) - 1) / (ordered[-1] - ordered[0])


def percentile(values: Iterable[float], share: float) -> float | None:
    """The nearest-rank percentile of ``values`` (``share`` in 0..1); None if there are none."""
    if not 0 <= share <= 1:
        raise ValueError(f"a percentile's share is in 0..1, got {share}")
    ordered = sorted(values)
    if not ordered:
        return None
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]
