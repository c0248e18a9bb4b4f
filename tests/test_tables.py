"""docs/experiments.md's results tables are written from the results CSV files."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from cli.main import main
from experiments.tables import DOC, MARKERS, TABLES
from experiments.tables import main as tables

NAMES = ["update-bound", "bot-detection"]


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("results")
    for name in NAMES:
        assert main(["experiment", name, "--quick", "--out", str(root)]) == 0
    return root


def doc_with(tmp_path: Path, names: list[str]) -> Path:
    doc = tmp_path / "experiments.md"
    doc.write_text("".join(f"## {name}\n<!-- results {name}: generated -->\nstale\n"
                           f"<!-- end results {name} -->\nprose stays\n" for name in names))
    return doc


def test_the_document_marks_a_table_for_every_writer():
    marked = {match["name"] for match in MARKERS.finditer(DOC.read_text())}
    assert marked == set(TABLES)


def test_tables_are_written_from_the_results_and_checked(results: Path, tmp_path: Path, capsys):
    doc = doc_with(tmp_path, NAMES)
    assert tables(["--results", str(results), "--doc", str(doc), "--check"]) == 1
    assert "the update-bound table differs" in capsys.readouterr().out
    assert tables(["--results", str(results), "--doc", str(doc)]) == 0
    text = doc.read_text()
    assert "stale" not in text and text.count("prose stays") == 2
    bots = pd.read_csv(results / "bot-detection" / "bot-detection.csv")
    beaver = bots[bots["protocol"] == "beaver"]
    assert (f"| beaver | {beaver['true_positives'].sum()}/{beaver['bots'].sum()} | 0 | 0 |"
            in text)
    bound = pd.read_csv(results / "update-bound" / "update-bound.csv")
    assert f"The bound held in **{int(bound['bound_holds'].sum()):,} of {len(bound):,}**" in text
    assert tables(["--results", str(results), "--doc", str(doc), "--check"]) == 0


def test_a_table_without_results_is_left_and_named(tmp_path: Path, capsys):
    doc = doc_with(tmp_path, ["deadlock"])
    before = doc.read_text()
    assert tables(["--results", str(tmp_path / "none"), "--doc", str(doc)]) == 0
    assert doc.read_text() == before
    assert "no results for deadlock" in capsys.readouterr().err
