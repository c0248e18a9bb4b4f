"""Experiments in --quick mode write the documented tidy CSV; plots are drawn from it alone."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from cli.main import main
from experiments.base import start_rate_hz
from experiments.update_bound import Adoption, AdoptionRecorder
from simulator import World, WorldConfig

DOCUMENTED_COLUMNS = {
    "effective-rate": ["gateways", "snapshot_rate_hz", "seed", "snapshots", "achieved_rate_hz",
                       "valid", "valid_fraction", "inconsistent", "inconsistent_valid"],
    "update-bound": ["gateways", "seed", "snapshot_id", "t1_t0_us", "gateway_spread_us",
                     "optimistic_adoptions", "bound_holds", "valid"],
    "max-rate": ["gateways", "window", "seed", "snapshots", "sustained_rate_hz",
                 "mean_complete_us", "mean_t1_t0_us", "valid_fraction"],
    "baselines": ["protocol", "nodes", "external_chain_rate_hz", "seed", "snapshots", "valid",
                  "complete", "inconsistent", "inconsistent_valid", "inconsistent_fraction",
                  "inconsistent_accepted_fraction", "extra_messages_per_snapshot",
                  "channel_exact_fraction"],
    "tau-sensitivity": ["true_tau_min_us", "controller_tau_min_us", "bound_ratio", "seed",
                        "snapshots", "valid", "inconsistent", "inconsistent_valid",
                        "valid_fraction", "inconsistent_valid_fraction"],
    "faults": ["fault", "rate", "breaks_assumption", "protocol", "seed", "snapshots",
               "requested", "valid", "complete", "inconsistent", "inconsistent_valid", "revoked",
               "inconsistent_revoked", "channel_inexact", "valid_fraction",
               "inconsistent_valid_fraction", "assumption_broken", "failed_updates",
               "retransmitted", "gateway_rollbacks", "short_chains", "overdue_packets",
               "wall_s"],
}


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    """Every experiment run once with --quick into one results root."""
    root = tmp_path_factory.mktemp("results")
    for name in DOCUMENTED_COLUMNS:
        assert main(["experiment", name, "--quick", "--out", str(root)]) == 0
    return root


def read(root: Path, name: str) -> tuple[list[str], list[dict[str, str]]]:
    with (root / name / f"{name}.csv").open(newline="") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


def number(text: str) -> float:
    return float(text)


@pytest.mark.parametrize("name", sorted(DOCUMENTED_COLUMNS))
def test_quick_run_writes_documented_columns_and_parameters(results: Path, name: str):
    columns, rows = read(results, name)
    assert columns == DOCUMENTED_COLUMNS[name]
    assert rows, f"{name} wrote no rows"
    parameters = json.loads((results / name / f"{name}.json").read_text())
    assert parameters["experiment"] == name
    assert parameters["quick"] is True
    assert parameters["rows"] == len(rows)
    assert parameters["grid"], "the swept parameters are recorded"


def test_effective_rate_fractions_and_no_accepted_inconsistency(results: Path):
    _, rows = read(results, "effective-rate")
    points = {(row["gateways"], row["snapshot_rate_hz"]) for row in rows}
    assert points == {("2", "1024"), ("2", "8192"), ("16", "1024"), ("16", "8192")}
    for row in rows:
        assert 0 <= number(row["valid_fraction"]) <= 1
        assert int(row["valid"]) <= int(row["snapshots"])
        assert int(row["inconsistent_valid"]) == 0


def test_update_bound_holds_in_every_snapshot(results: Path):
    _, rows = read(results, "update-bound")
    assert {row["gateways"] for row in rows} == {"2", "16"}
    for row in rows:
        spread, update = number(row["gateway_spread_us"]), number(row["t1_t0_us"])
        assert 0 <= spread <= update
        assert row["bound_holds"] == "True"
    wide = [number(r["gateway_spread_us"]) for r in rows if r["gateways"] == "16"]
    narrow = [number(r["gateway_spread_us"]) for r in rows if r["gateways"] == "2"]
    assert sorted(wide)[len(wide) // 2] > sorted(narrow)[len(narrow) // 2]


def test_max_rate_parallelism_raises_the_rate(results: Path):
    _, rows = read(results, "max-rate")
    rate = {(row["gateways"], row["window"]): number(row["sustained_rate_hz"]) for row in rows}
    for gateways in ("2", "16"):
        assert rate[(gateways, "31")] > 5 * rate[(gateways, "1")] > 0


def test_baselines_measures(results: Path):
    _, rows = read(results, "baselines")
    assert {row["protocol"] for row in rows} == {"beaver", "lai-yang", "chandy-lamport",
                                                  "polling"}
    assert {number(row["external_chain_rate_hz"]) > 0 for row in rows} == {True, False}
    for row in rows:
        for column in ("inconsistent_fraction", "channel_exact_fraction"):
            assert 0 <= number(row[column]) <= 1
        nodes = int(row["nodes"])
        markers = number(row["extra_messages_per_snapshot"])
        if row["protocol"] == "chandy-lamport":
            assert markers == nodes * (nodes - 1)
        else:
            assert markers == 0
        if row["protocol"] == "beaver":
            assert int(row["inconsistent_valid"]) == 0
            assert number(row["inconsistent_accepted_fraction"]) == 0
            assert number(row["channel_exact_fraction"]) == 1


def test_tau_sensitivity_correct_bound_accepts_no_inconsistency(results: Path):
    _, rows = read(results, "tau-sensitivity")
    by_ratio = {number(row["bound_ratio"]): row for row in rows}
    assert set(by_ratio) == {1.0, 2.0, 8.0, 32.0}
    drawn = [row for row in rows if row["inconsistent_valid_fraction"] not in ("", "nan")]
    assert len(drawn) >= 3, "the quick figure's left panel needs more than one point"
    assert int(by_ratio[1.0]["inconsistent_valid"]) == 0
    assert int(by_ratio[32.0]["valid"]) > int(by_ratio[1.0]["valid"])
    for row in rows:
        assert int(row["inconsistent_valid"]) <= int(row["inconsistent"])
        assert number(row["controller_tau_min_us"]) == pytest.approx(
            number(row["true_tau_min_us"]) * number(row["bound_ratio"])
        )


@pytest.mark.parametrize("name", sorted(DOCUMENTED_COLUMNS))
def test_plot_from_csv_alone_writes_png(results: Path, tmp_path: Path, name: str, capsys):
    alone = tmp_path / name
    alone.mkdir()
    shutil.copy(results / name / f"{name}.csv", alone)
    assert main(["plot", name, "--results", str(tmp_path)]) == 0
    png = alone / f"{name}.png"
    assert str(png) in capsys.readouterr().out
    data = png.read_bytes()
    assert data.startswith(b"\x89PNG") and len(data) > 10_000


@pytest.mark.parametrize("argv", [
    ["experiment", "no-such-experiment"],
    ["experiment", "baselines", "--seeds", "0"],
    ["experiment", "baselines", "--seeds", "many"],
    ["experiment"],
    ["plot", "no-such-experiment"],
])
def test_bad_input_is_one_line_and_exit_2(argv: list[str], capsys):
    assert main(argv) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and error.startswith(f"beaver {argv[0]}:")


def test_faults_every_protocol_every_fault_and_beaver_accepts_no_inconsistency(results: Path):
    _, rows = read(results, "faults")
    assert {row["protocol"] for row in rows} == {"beaver", "lai-yang", "chandy-lamport",
                                                 "polling"}
    beaver = [row for row in rows if row["protocol"] == "beaver"]
    assert {row["fault"] for row in beaver} >= {"none", "control-loss", "chain-violation-share"}
    for row in beaver:
        assert number(row["snapshots"]) == number(row["requested"]) > 0
        if row["breaks_assumption"] == "False":
            assert number(row["inconsistent_valid"]) == 0, row
    lossy = next(row for row in beaver if row["fault"] == "control-loss")
    assert number(lossy["failed_updates"]) > 0 and number(lossy["retransmitted"]) > 0
    short = next(row for row in beaver if row["fault"] == "chain-violation-share")
    assert number(short["short_chains"]) > 0 and short["assumption_broken"] == "True"


def test_plot_without_results_is_exit_2(tmp_path: Path, capsys):
    assert main(["plot", "max-rate", "--results", str(tmp_path)]) == 2
    assert "beaver experiment max-rate" in capsys.readouterr().err


def test_list_names_every_experiment(capsys):
    assert main(["experiment", "--list"]) == 0
    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    # the emulated ones need root (their own test files); the use cases have test_usecases.py
    assert listed == [*DOCUMENTED_COLUMNS, "emulated-timings", "emulated-max-rate", "overhead",
                      "bot-detection", "deadlock", "emulated-bot-detection"]


def test_start_rate_skips_the_initial_burst():
    burst_then_steady = [0.0] * 5 + [1.0, 2.0, 3.0, 4.0]
    assert start_rate_hz(burst_then_steady) == pytest.approx(8 / 4)
    assert start_rate_hz(burst_then_steady, skip=5) == pytest.approx(1.0)
    assert start_rate_hz([1.0]) != start_rate_hz([1.0])  # NaN: too few starts


def test_adoption_recorder_tells_optimistic_marking_from_updates():
    world = World(WorldConfig(gateways=2, nodes=2, snapshots=0))
    recorder = AdoptionRecorder(world)
    first, second = world.gateways
    world.engine.now = 1e-6
    assert first.observe_ingroup(first.space.to_wire(2))
    world.engine.now = 2e-6
    assert second.set_id(1)
    assert not second.set_id(1)
    assert recorder.adopted[1] == {first.name: Adoption(1e-6, True),
                                   second.name: Adoption(2e-6, False)}
    assert recorder.adopted[2] == {first.name: Adoption(1e-6, True)}
