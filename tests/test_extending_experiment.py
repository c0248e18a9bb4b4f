"""docs/extending.md's worked experiment, registered, run with --quick and plotted."""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

import pytest

from cli.main import main
from experiments import EXPERIMENTS

EXAMPLE = Path(__file__).resolve().parent.parent / "docs" / "examples" / "nodes_sweep.py"


@pytest.fixture
def nodes_sweep(monkeypatch):
    """The example experiment registered as docs/extending.md says: one entry in EXPERIMENTS."""
    spec = importlib.util.spec_from_file_location("nodes_sweep_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setitem(EXPERIMENTS, module.NAME, module.EXPERIMENT)
    return module.EXPERIMENT


def test_the_registered_experiment_runs_lists_and_plots(nodes_sweep, tmp_path: Path,
                                                        capsys) -> None:
    assert main(["experiment", "--list"]) == 0
    assert nodes_sweep.name in capsys.readouterr().out
    assert main(["experiment", nodes_sweep.name, "--quick", "--out", str(tmp_path)]) == 0
    with open(tmp_path / nodes_sweep.name / f"{nodes_sweep.name}.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert tuple(rows[0]) == nodes_sweep.columns
    assert sorted(int(row["nodes"]) for row in rows) == [4, 16]
    assert all(int(row["snapshots"]) == 20 and row["inconsistent"] == "0" for row in rows)
    capsys.readouterr()
    assert main(["plot", nodes_sweep.name, "--results", str(tmp_path)]) == 0
    png = Path(capsys.readouterr().out.split()[-1])
    assert png.read_bytes().startswith(b"\x89PNG")
