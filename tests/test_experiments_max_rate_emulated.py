"""``emulated-max-rate``: serial and pipelined bursts in the emulated data center, and the plot.

The Mininet test runs ``beaver experiment emulated-max-rate --quick`` as a
subprocess and checks its rows; the pure tests draw the figure from a
hand-written CSV and check the one-line refusal on a machine that cannot
build the data center.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from emulated_cli import REPO, beaver, bridges_of

from cli.main import main
from experiments import emulated_timings
from experiments.emulated_max_rate import COLUMNS, PHASES, draw

NAME = "emulated-max-rate"


@pytest.mark.mininet
def test_quick_run_measures_serial_and_pipelined_rates_and_plots(mininet_machine: None,
                                                                  tmp_path: Path) -> None:
    ran, prefix = beaver("experiment", NAME, "--quick", "--out", str(tmp_path), timeout=240)
    assert ran.returncode == 0, ran.stderr
    assert bridges_of(prefix) == []
    frame = pd.read_csv(tmp_path / NAME / f"{NAME}.csv")
    assert tuple(frame.columns) == COLUMNS
    assert list(frame["phase"]) == [phase for phase, _ in PHASES]
    assert list(frame["parallel"]) == [False, True, False]
    assert (frame["rate_hz"] > 0).all()
    assert (frame["stored"] == frame["snapshots"]).all() and (frame["snapshots"] == 150).all()
    assert (frame["accepted"] > 0).all()
    assert (frame["inconsistent_accepted"] == 0).all()
    assert (frame["invariant_violations"] == 0).all()
    drawn = subprocess.run([sys.executable, "-m", "cli", "plot", NAME,
                            "--results", str(tmp_path)],
                           cwd=REPO, capture_output=True, text=True, timeout=60)
    assert drawn.returncode == 0, drawn.stderr
    assert Path(drawn.stdout.strip()).read_bytes().startswith(b"\x89PNG")


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


def test_refuses_in_one_line_without_the_emulated_data_center(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(emulated_timings, "ovs_problem",
                        lambda: "needs root (network namespaces, Open vSwitch)")
    assert main(["experiment", NAME, "--quick", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "needs root" in err
    assert not (tmp_path / NAME).exists(), "nothing is written before the machine is checked"
