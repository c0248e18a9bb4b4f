"""An iperf3 run that reports a failure is tried once more before the error stands."""

from __future__ import annotations

import pytest

from testbed.traffic import Iperf, IperfFailed


def iperf_failing(times: int) -> tuple[Iperf, list[int]]:
    """An Iperf whose first ``times`` runs fail (no data center behind it)."""
    iperf = Iperf.__new__(Iperf)
    calls: list[int] = []

    def run_once(seconds: float, offered_bps: float | None) -> float:
        calls.append(1)
        if len(calls) <= times:
            raise IperfFailed(f"iperf3: unable to receive control message ({len(calls)})")
        return 1e8

    iperf._run_once = run_once  # type: ignore[method-assign]
    return iperf, calls


def test_one_failed_run_is_tried_again() -> None:
    iperf, calls = iperf_failing(1)
    assert iperf.run(1.0) == 1e8
    assert len(calls) == 2


def test_two_failed_runs_stand_as_one_error_naming_both() -> None:
    iperf, calls = iperf_failing(2)
    with pytest.raises(RuntimeError, match=r"failed twice: .*\(1\); then .*\(2\)"):
        iperf.run(1.0)
    assert len(calls) == 2
