"""``emulated-max-rate``: serial and pipelined bursts in the emulated data center, and the plot.

The Mininet test runs ``beaver experiment emulated-max-rate --quick`` as a
subprocess and checks its rows; the pure tests draw the figure from a
hand-written CSV (the refusal on a machine that cannot build the data
center is tested for every emulated experiment in test_experiments_emulated).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from emulated_cli import plot, quick_run

from experiments.emulated_max_rate import COLUMNS, PARALLEL_SNAPSHOTS, PHASES, draw, plan

NAME = "emulated-max-rate"


@pytest.mark.mininet
def test_quick_run_measures_serial_and_pipelined_rates_and_plots(mininet_machine: None,
                                                                  tmp_path: Path) -> None:
    frame = quick_run(NAME, tmp_path, COLUMNS)
    assert list(frame["phase"]) == [phase for phase, _ in PHASES]
    assert list(frame["parallel"]) == [False, True, False]
    assert (frame["rate_hz"] > 0).all()
    serial = plan(quick=True, seeds=1).fixed["snapshots_per_burst"]
    assert list(frame["snapshots"]) == [serial, PARALLEL_SNAPSHOTS, serial]
    assert (frame["stored"] == frame["snapshots"]).all()
    assert (frame["accepted"] > 0).all()
    assert (frame["inconsistent_accepted"] == 0).all()
    assert (frame["invariant_violations"] == 0).all()
    plot(NAME, tmp_path)


def test_plot_from_a_hand_written_csv(tmp_path: Path) -> None:
    folder = tmp_path / NAME
    folder.mkdir()
    lines = [",".join(COLUMNS)]
    for gateways in (1, 2):
        for phase, window in PHASES:
            rate = 300.0 if window > 1 else 60.0
            lines.append(f"{gateways},{window > 1},{rate},{phase},{window},1,100,100,90,0,0,200")
    (folder / f"{NAME}.csv").write_text("\n".join(lines) + "\n")
    assert draw(tmp_path) == [folder / f"{NAME}.png"]
    assert (folder / f"{NAME}.png").stat().st_size > 10_000

