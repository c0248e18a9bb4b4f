"""``beaver export`` and ``beaver compare`` over stored runs, and the notebook in docs/."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib
import pandas as pd
import pytest

from cli.main import main

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """A database with two simulated runs: Lai-Yang (run 1) and Beaver (run 2)."""
    db = tmp_path_factory.mktemp("runs") / "sim.db"
    for protocol in ("lai-yang", "beaver"):
        assert main(["simulate", "--protocol", protocol, "--nodes", "4", "--externals", "4",
                     "--snapshots", "30", "--seed", "5", "--db", str(db)]) == 0
    return db


def test_export_writes_one_tidy_csv_per_table_with_verdicts_joined(runs: Path, tmp_path: Path,
                                                                   capsys):
    capsys.readouterr()
    assert main(["export", "1", "--to", str(tmp_path / "out"), "--db", str(runs)]) == 0
    written = capsys.readouterr().out.split()
    assert {Path(p).name for p in written} >= {"runs.csv", "snapshots.csv", "in_flight.csv",
                                              "events.csv", "local_states.csv"}
    snapshots = pd.read_csv(tmp_path / "out" / "snapshots.csv")
    assert len(snapshots) == 30 and set(snapshots["run"]) == {1}
    assert snapshots["oracle_consistent"].notna().all()
    assert (snapshots["oracle_consistent"] == 0).any(), "lai-yang breaks some cut here"


def test_compare_sets_two_runs_side_by_side(runs: Path, capsys):
    capsys.readouterr()
    assert main(["compare", "1", f"{runs}:2", "--db", str(runs), "--json"]) == 0
    sides = json.loads(capsys.readouterr().out)
    first, second = sides[f"{runs}:1"], sides[f"{runs}:2"]
    assert (first["protocol"], second["protocol"]) == ("lai-yang", "beaver")
    assert first["snapshots"] == 30 and second["inconsistent_accepted"] == 0
    assert first["inconsistent"] > 0
    assert main(["compare", "1", "2", "--db", str(runs)]) == 0
    text = capsys.readouterr().out
    assert "second / first" in text and "inconsistent_accepted" in text


@pytest.mark.parametrize("argv, words", [
    (["compare", "1", "x:y"], "FILE:ID"),
    (["compare", "1", "7"], "7"),
    (["export", "9", "--to", "out"], "9"),
])
def test_bad_runs_are_one_line_and_exit_2(runs: Path, tmp_path: Path, capsys, argv, words):
    argv = [*argv, "--db", str(runs)]
    if "--to" in argv:
        argv[argv.index("--to") + 1] = str(tmp_path / "out")
    assert main(argv) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and words in error


def test_the_notebook_loads_a_run_and_draws_the_figure(runs: Path, monkeypatch):
    notebook = json.loads((REPO / "docs" / "analysis.ipynb").read_text())
    cells = ["".join(cell["source"]) for cell in notebook["cells"]
             if cell["cell_type"] == "code"]
    matplotlib.use("Agg")
    monkeypatch.chdir(REPO)
    namespace: dict = {}
    exec(cells[0], namespace)
    namespace["DB"], namespace["RUN"] = runs, 2
    for cell in cells[1:]:
        exec(cell, namespace)
    assert namespace["summary"]["inconsistent among accepted"] == 0
    assert (runs.parent / "run-2-t1-t0.png").is_file()
