"""``beaver run --service kv`` and ``beaver restore`` of its snapshot, in emulated data centers.

One run of the key-value store, loaded by the plan's external client
through the VIP, with 10 snapshots; then a restore of the snapshot with the
most in-flight replication batches (the newest among equals) into a fresh
network. Each command runs as a subprocess with its own
network (named after its PID); no bridge of theirs may be left behind.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from emulated_cli import beaver, bridges_of, last_json

from controller.coordinator.store import open_existing

pytestmark = pytest.mark.mininet


def test_kv_run_stores_its_state_and_restores_it(mininet_machine: None, tmp_path: Path) -> None:
    db = tmp_path / "beaver.db"
    done, prefix = beaver("run", "--service", "kv", "--snapshots", "10", "--json",
                          "--db", str(db))
    assert done.returncode == 0, done.stderr[-2000:]
    assert bridges_of(prefix) == [], "beaver run left bridges behind"
    summary = last_json(done.stdout)
    assert summary["service"] == "kv" and summary["snapshots"] == 10
    assert summary["complete"] == 10 and summary["invariant_violations"] is None
    assert "bank invariant: not applicable" in done.stdout
    assert summary["judged"] == 10 and summary["inconsistent_valid"] == 0
    assert summary["channel_inexact"] == 0
    [client] = summary["clients"]
    assert client["sent"] > 0 and client["replies"] > 0 and client["from_vip"] == client["replies"]
    with open_existing(db) as store:
        last = store.snapshot(summary["run"], 10)
        chosen = max(store.snapshot_rows(summary["run"]),
                     key=lambda r: (r["in_flight"], r["snapshot_id"]))
        restored = store.snapshot(summary["run"], chosen["snapshot_id"])
    assert len(last.states) == 4 and all(s.state["data"] for s in last.states), (
        f"the clients' writes reach every backend by the last snapshot: {last.states}")

    done, prefix = beaver("restore", str(chosen["snapshot_id"]), "--db", str(db),
                          "--run", str(summary["run"]), "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    assert bridges_of(prefix) == []
    report = last_json(done.stdout)
    assert report["ok"] and report["mismatched_nodes"] == [] and report["service"] == "kv"
    assert "fresh emulated network" in report["where"]
    assert report["stored_keys"] == {s.node: len(s.state["data"]) for s in restored.states}
    assert report["in_flight_applied"] == chosen["in_flight"]
    assert "state matches at every node" in done.stdout
