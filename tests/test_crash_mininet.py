"""A ``beaver run`` killed with SIGKILL: its database survives, ``beaver clean`` removes the rest.

The run and ``beaver clean`` are subprocesses sharing a state directory of
this test's own (``BEAVER_STATE_DIR``), so clean sees only this run's
record. The test waits, by polling the database read-only, until at least
5 snapshots are stored, reads the run's record, kills the run, and checks
that every stored snapshot is intact and that clean leaves no bridge,
process, interface, directory or record of the run. ``beaver clean`` runs
again in the test's ``finally``, so a failure leaves nothing behind either.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from emulated_cli import REPO, bridges_of, switch_daemons_of

from testbed.switchd import SwitchDaemons
from topologies.leftovers import System
from topologies.record import STATE_DIR_VARIABLE, Record, process_start

pytestmark = pytest.mark.mininet
STORED_BEFORE_KILL = 5


def beaver(state: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-m", "cli", *argv], cwd=REPO,
                          env={**os.environ, STATE_DIR_VARIABLE: str(state)},
                          capture_output=True, text=True, timeout=120)
    print(f"$ beaver {' '.join(argv)}\n{done.stdout[-3000:]}{done.stderr[-2000:]}")
    return done


def stored_snapshots(db: Path) -> int:
    """Snapshots in the database, read-only (0 before the run created its tables)."""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as connection:
            return connection.execute("SELECT count(*) FROM snapshots").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def wait_for_snapshots(process: subprocess.Popen[bytes], db: Path, count: int,
                       timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while (stored := stored_snapshots(db)) < count:
        if process.poll() is not None:
            pytest.fail(f"beaver run exited ({process.returncode}) after storing {stored} "
                        f"snapshots, before {count}")
        if time.monotonic() > deadline:
            pytest.fail(f"beaver run stored {stored} snapshots in {timeout:g} s, not {count}")
        time.sleep(0.1)
    return stored




def still_there(record: Record) -> dict[str, list[Any]]:
    """What of ``record`` still exists as recorded (same PID start time, same ifindex)."""
    system = System()
    return {
        "processes": [p.pid for p in record.processes if process_start(p.pid) == p.start],
        "bridges": [b.name for b in record.bridges if system.bridge_uuid(b.name) == b.uuid],
        "interfaces": [i.name for i in record.interfaces
                       if system.interface_index(i.name) == i.ifindex],
        "directories": [d for d in record.directories if Path(d).exists()],
    }


def test_sigkilled_run_keeps_its_snapshots_and_clean_removes_its_network(
        mininet_machine: None, tmp_path: Path) -> None:
    db, state = tmp_path / "beaver.db", tmp_path / "state"
    process = subprocess.Popen(
        [sys.executable, "-m", "cli", "run", "--snapshots", "1000", "--rate", "20",
         "--db", str(db)], cwd=REPO, env={**os.environ, STATE_DIR_VARIABLE: str(state)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_snapshots(process, db, STORED_BEFORE_KILL, timeout=180)
        [path] = state.glob(f"*-{process.pid}.json")
        record = Record.from_json(path.read_text())
        prefix = record.prefix
        stored_before = stored_snapshots(db)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)

        left = still_there(record)
        assert sorted(bridges_of(prefix)) != [], "the killed run's switch daemons kept its bridges"
        survivors = {p.role for p in record.processes if p.pid in left["processes"]}
        assert "controller" in survivors, "the controller outlived the run"
        assert {"ovs-vswitchd of switch daemon fabric", "ovsdb-server of switch daemon fabric",
                f"ovs-vswitchd of switch daemon {SwitchDaemons.SHARED}"} <= survivors, \
            "the switch daemons outlived the run"
        assert sorted(switch_daemons_of(prefix)) == sorted(
            p.pid for p in record.processes if "switch daemon" in p.role and p.pid in left[
                "processes"]), "every running switch daemon of the run is in its record"
        assert len(record.directories) == 2

        with sqlite3.connect(db) as connection:
            assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            states = dict(connection.execute(
                "SELECT s.snapshot_id, count(l.node) FROM snapshots s LEFT JOIN local_states l"
                " USING (run, snapshot_id) WHERE s.complete GROUP BY s.snapshot_id").fetchall())
        assert states and set(states.values()) == {4}, "each complete snapshot has 4 states"
        shown = beaver(state, "show", "--db", str(db), "--json")
        assert shown.returncode == 0
        rows = json.loads(shown.stdout.strip().splitlines()[-1])["snapshots"]
        assert len(rows) >= stored_before
        assert {r["snapshot_id"] for r in rows if r["complete"]} == set(states)

        cleaned = beaver(state, "clean", "--json")
        assert cleaned.returncode == 0
        report = json.loads(cleaned.stdout.strip().splitlines()[-1])
        assert [(r["record"], r["owner_alive"], r["error"]) for r in report["runs"]] == \
            [(record.name, False, None)]
        removed = report["runs"][0]["removed"]
        # agents may still exit by themselves (their stdout pipe broke) before clean runs
        assert {p["pid"] for p in removed["processes"]} <= set(left["processes"])
        assert sorted(removed["bridges"]) == sorted(left["bridges"])
        assert still_there(record) == {"processes": [], "bridges": [], "interfaces": [],
                                       "directories": []}
        assert bridges_of(prefix) == []
        assert switch_daemons_of(prefix) == []
        assert list(state.iterdir()) == [], "the record is gone"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        assert beaver(state, "clean").returncode == 0
