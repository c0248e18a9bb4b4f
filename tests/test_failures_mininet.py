"""A component that dies mid-run is noticed within seconds, named, and the run exits 1.

``beaver run`` runs with a state directory of this test's own; once 5
snapshots are stored, the test kills (SIGKILL) one component found in the
run's record: a bank agent, the relay or the gateway controller; or it
deletes one of the run's gateway bridges. The run must notice
within a couple of seconds, stop taking snapshots, name the component and
why in its JSON ``failures``, store the snapshots left open as incomplete,
exit 1, and still remove everything it created.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from emulated_cli import REPO, bridges_of, last_json

from testbed.switchd import SwitchDaemons
from topologies.record import STATE_DIR_VARIABLE, Record

pytestmark = pytest.mark.mininet


def break_component(record: Record, role: str) -> tuple[str, str]:
    """Kill the recorded process whose role starts with ``role``, or delete the first
    gateway bridge (``role == "bridge"``, on the gateways' switch daemon); returns the
    failure the run should report."""
    if role == "bridge":
        gateway = next(b.name for b in record.bridges if b.name.startswith(f"{record.prefix}gw"))
        sockets = [Path(d) / "ovs" / SwitchDaemons.SHARED / "db.sock" for d in record.directories]
        [database] = [path for path in sockets if path.exists()]
        subprocess.run(["ovs-vsctl", f"--db=unix:{database}", "del-br", gateway], check=True)
        return "bridges", f"bridge {gateway} is gone"
    victim = next(p for p in record.processes if p.role.startswith(role))
    os.kill(victim.pid, signal.SIGKILL)
    return victim.role, "killed by signal 9 (SIGKILL)"


@pytest.mark.parametrize("role", ["hosts.agent on", "hosts.relay on", "controller", "bridge"])
def test_a_killed_component_is_named_and_the_run_exits_1(mininet_machine: None, tmp_path: Path,
                                                         role: str) -> None:
    db, state = tmp_path / "beaver.db", tmp_path / "state"
    environment = {**os.environ, STATE_DIR_VARIABLE: str(state)}
    process = subprocess.Popen(
        [sys.executable, "-m", "cli", "run", "--snapshots", "400", "--rate", "10", "--json",
         "--db", str(db)], cwd=REPO, env=environment, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE)
    try:
        assert process.stderr is not None and process.stdout is not None
        seen = b""
        while max(map(int, re.findall(rb"(\d+) stored", seen)), default=0) < 5:
            chunk = process.stderr.read1(4096)  # type: ignore[attr-defined]
            assert chunk, f"beaver run ended before storing 5 snapshots: {seen[-2000:]!r}"
            seen += chunk
        [path] = state.glob(f"*-{process.pid}.json")
        record = Record.from_json(path.read_text())
        component, reason = break_component(record, role)
        killed_at = time.monotonic()
        out, err = process.communicate(timeout=60)
        ended_at = time.monotonic()
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=60)
    err = (seen + err).decode(errors="replace")
    print(err[-3000:])
    assert process.returncode == 1, err[-2000:]
    summary = last_json(out.decode())
    [failure] = [f for f in summary["failures"] if f["component"] == component]
    assert failure["reason"] == reason
    assert failure["noticed_at"] - killed_at < 2.5, "noticed within a couple of seconds"
    assert ended_at - killed_at < 30, "the run did not wait out its timeout"
    assert f"{component} ({reason})" in out.decode()
    assert summary["snapshots"] < 400 and summary["given_up_reason"].startswith(component)
    if role == "hosts.agent on":
        assert summary["given_up_snapshots"], "the snapshots the dead agent left open"
        complete = {r["snapshot_id"]: r["complete"] for r in json.loads(subprocess.run(
            [sys.executable, "-m", "cli", "show", "--db", str(db), "--json"], cwd=REPO,
            capture_output=True, text=True, check=True).stdout)["snapshots"]}
        assert not any(complete[k] for k in summary["given_up_snapshots"])
    assert bridges_of(record.prefix) == []
    assert list(state.iterdir()) == [], "no record and no name claim is left"
