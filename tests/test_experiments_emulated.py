"""``emulated-timings``: the experiment in the emulated data center, its chain rule and its plot.

The Mininet test runs ``beaver experiment emulated-timings --quick`` as a
subprocess (its network is named after its PID, and it removes it on
Ctrl-C), checks the documented columns and that no bridge of its own is
left, then draws the figure from the CSV alone. The pure tests check the
chain rule on hand-written event logs, the figure on a hand-written CSV,
and the one-line refusal on a machine that cannot build the data center.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from emulated_cli import beaver, bridges_of, plot

from cli.main import main
from experiments.emulated_timings import COLUMNS, draw, relayed_chains, share_below_tau
from testbed import network
from testbed.truth import Event, ProcessLog

NAME = "emulated-timings"






@pytest.mark.mininet
def test_quick_run_measures_updates_and_chains_and_plots(mininet_machine: None,
                                                         tmp_path: Path) -> None:
    ran, prefix = beaver("experiment", NAME, "--quick", "--out", str(tmp_path))
    assert ran.returncode == 0, ran.stderr
    assert bridges_of(prefix) == []
    frame = pd.read_csv(tmp_path / NAME / f"{NAME}.csv")
    assert tuple(frame.columns) == COLUMNS
    updates, chains = frame[frame["kind"] == "update"], frame[frame["kind"] == "chain"]
    assert set(updates["gateways"]) == {1, 2}
    assert len(updates) >= 30  # 20 snapshots per |G|; a stalled one may lack its t1
    assert (updates["t1_t0_us"] > 0).all()
    assert (updates["first_ack_us"] <= updates["last_ack_us"]).all()
    assert (updates["last_ack_us"] <= updates["t1_t0_us"] + 1e-3).all()
    assert set(chains["gateways"]) == {1, 2}
    assert (chains["chain_us"] > 0).all()
    assert (frame["tau_min_us"] > 0).all()

    assert plot(NAME, tmp_path) == tmp_path / NAME / f"{NAME}.png"

def ingroup(process: str, *events: Event) -> ProcessLog:
    return ProcessLog(process, "ingroup", list(events))


def test_chain_time_runs_from_the_original_send_to_the_derived_receive() -> None:
    relay = ProcessLog("relay@10.0.9.1:9200", "relay", [
        Event(1.0010, "receive", "h1:1"),  # derives relay@10.0.9.1:9200:1
        Event(1.0020, "receive", "h2:1"),  # derives ...:2, never received in-group
        Event(1.0060, "send", "relay@10.0.9.1:9200:1"),
        Event(1.0070, "send", "relay@10.0.9.1:9200:2"),
        Event(1.0080, "receive", "outsider:1"),  # derives ...:3 from an unlogged sender
    ])
    logs = [
        ingroup("h1", Event(1.0000, "send", "h1:1")),
        ingroup("h2", Event(1.0015, "send", "h2:1"),
                Event(1.0075, "receive", "relay@10.0.9.1:9200:1"),
                Event(1.0200, "receive", "relay@10.0.9.1:9200:3")),
        relay,
    ]
    assert relayed_chains(logs) == [pytest.approx(0.0075)]


def test_plot_from_a_hand_written_csv(tmp_path: Path) -> None:
    folder = tmp_path / NAME
    folder.mkdir()
    lines = [",".join(COLUMNS)]
    for gateways, tau in ((1, 8000.0), (2, 7000.0)):
        for k, t1_t0 in enumerate((3000.0, 5000.0, 9000.0), start=1):
            lines.append(f"update,{gateways},1,{k},{t1_t0},{t1_t0 - 500},{t1_t0},True,,{tau}")
        for chain in (7500.0, 9000.0, 12000.0):
            lines.append(f"chain,{gateways},1,,,,,,{chain},{tau}")
    (folder / f"{NAME}.csv").write_text("\n".join(lines) + "\n")
    frame = pd.read_csv(folder / f"{NAME}.csv")
    assert share_below_tau(frame[frame["kind"] == "update"]) == {1: (2, 3), 2: (2, 3)}
    assert draw(tmp_path) == [folder / f"{NAME}.png"]
    assert (folder / f"{NAME}.png").stat().st_size > 10_000


@pytest.mark.parametrize("name", ["emulated-timings", "emulated-max-rate", "overhead"])
def test_refuses_in_one_line_without_the_emulated_data_center(
        name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(network, "ovs_problem",
                        lambda: "needs root (network namespaces, Open vSwitch)")
    assert main(["experiment", name, "--quick", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "needs root" in err
    assert not (tmp_path / name).exists(), "nothing is written before the machine is checked"
