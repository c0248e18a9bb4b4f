"""``emulated-bot-detection``: the bot-detection rule on snapshots of the emulated data center."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from cli.main import main

pytestmark = pytest.mark.mininet


def test_beaver_accuses_no_honest_client_in_the_emulation(mininet_machine: None,
                                                          tmp_path: Path) -> None:
    assert main(["experiment", "emulated-bot-detection", "--quick", "--out",
                 str(tmp_path)]) == 0
    with (tmp_path / "emulated-bot-detection" / "emulated-bot-detection.csv").open() as f:
        rows = {row["protocol"]: row for row in csv.DictReader(f)}
    assert set(rows) == {"beaver", "lai-yang"}
    assert rows["beaver"]["false_positives"] == "0"
    for row in rows.values():
        assert int(row["snapshots_with_false_positive"]) <= int(row["inconsistent_accepted"])
