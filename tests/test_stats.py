"""The one percentile: nearest rank, always a measured value."""

from __future__ import annotations

import pytest

from stats import percentile, start_rate


def test_nearest_rank_picks_a_measured_value() -> None:
    values = [4.0, 1.0, 3.0, 2.0]
    assert percentile(values, 0.5) == 2.0
    assert percentile(values, 0.75) == 3.0
    assert percentile(values, 0.99) == 4.0 and percentile(values, 1.0) == 4.0
    assert percentile(values, 0.0) == 1.0
    assert percentile([7.0], 0.5) == 7.0


def test_no_values_no_percentile_and_a_bad_share_is_refused() -> None:
    assert percentile([], 0.5) is None
    with pytest.raises(ValueError, match="0..1"):
        percentile([1.0], 1.5)


def test_start_rate_counts_from_the_first_start_after_the_skipped_ones():
    # Four starts at once fill an empty pipeline, then one every 0.1 s.
    starts = [0.0, 0.0, 0.0, 0.0, 0.1, 0.2, 0.3, 0.4]
    assert start_rate(starts) == pytest.approx(7 / 0.4)
    assert start_rate(starts, skip=4) == pytest.approx(3 / 0.3)


def test_start_rate_needs_two_starts_apart_in_time():
    assert start_rate([]) is None
    assert start_rate([1.0]) is None
    assert start_rate([1.0, 1.0]) is None
    assert start_rate([0.0, 1.0, 2.0], skip=2) is None
