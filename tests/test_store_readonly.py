"""Readers never write: ``beaver show`` and ``restore --offline`` open the database
read-only, refuse what is not a testbed database, and start-ups that fail leave no run.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_store import bank_db, beaver  # noqa: F401 (the fixture)

from cli.commands import run as run_command
from controller.coordinator.store import Store
from testbed import network

REPO = Path(__file__).resolve().parents[1]


def fingerprint(folder: Path) -> dict[str, str]:
    """Every file in ``folder`` with a hash of its bytes."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}


@pytest.mark.parametrize("content", [b"", b"\x00garbage that is no SQLite file" * 40,
                                     b"SQLite format 3\x00" + b"\x00" * 200])
@pytest.mark.parametrize("command", [("show",), ("show", "1", "--json"),
                                     ("restore", "1", "--offline")])
def test_a_file_that_is_not_a_testbed_database_is_one_line_exit_2_and_unchanged(
        tmp_path: Path, capsys, content: bytes, command: tuple[str, ...]) -> None:
    path = tmp_path / "notes.db"
    path.write_bytes(content)
    before = fingerprint(tmp_path)
    code, out, err = beaver(capsys, *command, "--db", str(path))
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and str(path) in err, err
    assert fingerprint(tmp_path) == before, "nothing was written, no file was added"


def test_show_and_offline_restore_write_nothing_to_a_real_database(bank_db: Path,  # noqa: F811
                                                                   capsys) -> None:
    """The file's bytes stay; SQLite's WAL index may appear beside it, with no log in it."""
    before = fingerprint(bank_db.parent)
    assert beaver(capsys, "show", "--db", str(bank_db))[0] == 0
    assert beaver(capsys, "show", "1", "--db", str(bank_db), "--json")[0] == 0
    assert beaver(capsys, "restore", "1", "--db", str(bank_db), "--offline")[0] == 0
    after = fingerprint(bank_db.parent)
    assert after[bank_db.name] == before[bank_db.name]
    wal = bank_db.with_name(bank_db.name + "-wal")
    assert not wal.exists() or wal.stat().st_size == 0


@pytest.fixture
def shared_folder() -> Iterator[Path]:
    """A root-owned folder others may read (pytest's own are private to root)."""
    folder = Path(tempfile.mkdtemp(prefix="beaver-readonly-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder)


@pytest.mark.skipif(os.geteuid() != 0, reason="reading as another user needs root")
def test_another_user_can_show_and_restore_offline_roots_database(
        bank_db: Path, shared_folder: Path) -> None:  # noqa: F811
    """The database is root's and not writable by ``nobody``, who reads it all the same."""
    db = shared_folder / "beaver.db"
    shutil.copy(bank_db, db)
    db.chmod(0o644)
    for command in (["show", "--json"], ["show", "1"], ["restore", "1", "--offline"]):
        done = subprocess.run(["runuser", "-u", "nobody", "--", sys.executable, "-m", "cli",
                               *command, "--db", str(db)], cwd=REPO, capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 0, done.stderr
    assert json.loads(subprocess.run(
        ["runuser", "-u", "nobody", "--", sys.executable, "-m", "cli", "show", "--json", "--db",
         str(db)], cwd=REPO, capture_output=True, text=True, timeout=60).stdout)["id"] == 1


def test_show_and_restore_pick_the_newest_run_not_a_restore_check(bank_db: Path,  # noqa: F811
                                                                  capsys) -> None:
    with Store(bank_db) as store:
        store.new_run("polling", {"restore_of": {"run": 1, "snapshot_id": 1}, "gateways": 1,
                                  "service": "bank", "initial_total": 0}, None, "not used")
        assert store.latest_run() == 1 and store.latest_run(restore_checks=True) == 2
    code, out, _ = beaver(capsys, "show", "--db", str(bank_db), "--json")
    assert json.loads(out)["id"] == 1
    code, out, _ = beaver(capsys, "restore", "1", "--db", str(bank_db), "--offline", "--json")
    assert code == 0 and json.loads(out.splitlines()[-1])["run"] == 1
    code, out, _ = beaver(capsys, "show", "--db", str(bank_db), "--run", "2", "--json")
    assert json.loads(out)["id"] == 2, "told otherwise, show reads the check run"


class FailingEmulation:
    """An emulated data center that cannot start (a name in use, a controller that died)."""

    def __init__(self, *args: object) -> None:
        pass

    def __enter__(self) -> FailingEmulation:
        raise RuntimeError("the controller exited with 1")

    def __exit__(self, *exc: object) -> None:
        pass


def test_a_failed_start_up_leaves_no_pending_run(tmp_path: Path, capsys, monkeypatch) -> None:
    db = tmp_path / "beaver.db"
    monkeypatch.setattr(network, "ovs_problem", lambda: None)
    monkeypatch.setattr(run_command, "Emulation", FailingEmulation)
    code, _, err = beaver(capsys, "run", "--snapshots", "3", "--db", str(db))
    assert code == 1 and "the controller exited with 1" in err
    with Store(db) as store:
        assert store.latest_run(restore_checks=True) is None, "no run is left pending"


def test_a_run_that_stored_snapshots_is_kept_when_it_fails(tmp_path: Path) -> None:
    from test_store import sample

    with Store(tmp_path / "beaver.db") as store:
        run = store.new_run("beaver", {"service": "bank"}, None, "pending")
        with pytest.raises(KeyboardInterrupt), store.discarding_if_empty(run):
            store.add_snapshot(run, "beaver", sample(1))
            raise KeyboardInterrupt
        assert store.latest_run() == run and len(store.snapshot_rows(run)) == 1
