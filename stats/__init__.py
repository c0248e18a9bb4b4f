"""Summary statistics the testbed reports, one definition each.

:func:`percentile` is the nearest-rank percentile: the smallest observed
value with at least ``share`` of the values at or below it (so ``1.0`` is the
maximum, and every result is a value that was measured). It serves the
simulator's and ``beaver run``'s summaries, the key-value clients' latencies
and the benchmarks alike. The package imports nothing.
"""

from __future__ import annotations

import math
from collections.abc import Iterable


def percentile(values: Iterable[float], share: float) -> float | None:
    """The nearest-rank percentile of ``values`` (``share`` in 0..1); None if there are none."""
    if not 0 <= share <= 1:
        raise ValueError(f"a percentile's share is in 0..1, got {share}")
    ordered = sorted(values)
    if not ordered:
        return None
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]
