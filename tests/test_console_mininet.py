"""``beaver cli``: the Mininet prompt over an emulated run, driven through stdin."""

from __future__ import annotations

from pathlib import Path

import pytest
from emulated_cli import beaver, bridges_of

from controller.coordinator.store import open_existing

pytestmark = pytest.mark.mininet


def test_snapshot_commands_at_the_prompt_store_and_leave_nothing(mininet_machine: None,
                                                                 tmp_path: Path) -> None:
    db = tmp_path / "cli.db"
    script = "snapshot 3\nsnapshots\ngateways\nshow 1\nsnapshot lots\nh1 true\nexit\n"
    done, prefix = beaver("cli", "--db", str(db), stdin=script)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "mininet> " in done.stdout
    assert "stored 3 snapshot(s) (1..3)" in done.stdout
    assert "*** usage: snapshot N (a whole number, got 'lots')" in done.stdout
    assert f"{prefix}gw1: stamps snapshot id" in done.stdout
    with open_existing(db) as store:
        run = store.latest_run()
        assert [row["snapshot_id"] for row in store.snapshot_rows(run)] == [1, 2, 3]
        assert store.verdicts(run), "the oracle judged the run on exit"
    assert bridges_of(prefix) == [], "beaver cli left bridges behind"


def test_restore_at_the_prompt(mininet_machine: None, tmp_path: Path) -> None:
    db = tmp_path / "cli.db"
    done, prefix = beaver("cli", "--db", str(db), "--snapshots", "2",
                          stdin="restore 2\nrestore 9\nexit\n")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "restored snapshot 2: 4 node(s) acknowledged their state" in done.stdout
    assert "*** no snapshot 9" in done.stdout
    assert bridges_of(prefix) == []
