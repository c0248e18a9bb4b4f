"""``beaver show``, ``restore --offline`` and the run summary on a key-value run built here.

The database holds one run of a two-backend key-value store: snapshot 1
has a replication batch in flight from ``a`` to ``b`` (``b``'s stored data
lacks its key), snapshot 2 nothing in flight. No network, no root.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from beaver.records import GatewayTiming
from cli.commands.restore import restored_states
from cli.main import main
from cli.runs.summary import summarize
from cli.runs.text import format_summary
from controller.coordinator.store import (
    FinishedSnapshot,
    Store,
    StoredInFlight,
    StoredLocal,
    open_existing,
)
from hosts.services.registry import SERVICES


def kv_state(data: dict[str, Any], unreplicated: dict[str, Any]) -> dict[str, Any]:
    return {"data": data, "unreplicated": unreplicated}


WRITTEN_AT_A = {f"k{n}": n for n in range(8)}
BATCH = {"kind": "replicate", "writes": {"k7": 7}, "message_id": "a:3", "sent_at": 1.0}


@pytest.fixture
def kv_db(tmp_path: Path) -> Path:
    path = tmp_path / "kv.db"
    with Store(path) as store:
        run = store.new_run("beaver", {"service": "kv", "gateways": 1, "ingroup": 2,
                                       "client_rate": 50.0, "replication_rate": 20.0},
                            5000.0, "given (--tau-min-us)")
        store.add_snapshot(run, "beaver", FinishedSnapshot(
            1, 1.0, 1.0002, True, True, 1.1,
            (StoredLocal("a", 1.01, kv_state(WRITTEN_AT_A, {})),
             StoredLocal("b", 1.02, kv_state({k: WRITTEN_AT_A[k] for k in ("k0", "k1")},
                                             {"k1": 1}))),
            (StoredInFlight("b", "a", 1.05, BATCH),),
            (GatewayTiming("gw1", 1.0, 1.0002, None),),
        ))
        store.add_snapshot(run, "beaver", FinishedSnapshot(
            2, 2.0, 2.0003, True, True, 2.1,
            (StoredLocal("a", 2.01, kv_state(WRITTEN_AT_A, {})),
             StoredLocal("b", 2.02, kv_state(WRITTEN_AT_A, {}))),
            (), (GatewayTiming("gw1", 2.0, 2.0003, None),),
        ))
    return path


def beaver(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_show_counts_keys_per_node_and_json_has_the_whole_state(kv_db: Path, capsys) -> None:
    code, out, _ = beaver(capsys, "show", "1", "--db", str(kv_db))
    assert code == 0
    assert "a: 8 keys (0 not replicated yet): k0=0, k1=1, k2=2, k3=3, k4=4, ..." in out
    assert "b: 2 keys (1 not replicated yet): k0=0, k1=1" in out
    assert '"kind": "replicate"' in out, "the in-flight batch is listed"
    code, out, _ = beaver(capsys, "show", "1", "--db", str(kv_db), "--json")
    kv = json.loads(out)["kv"]
    assert kv["nodes"]["a"] == {"keys": 8, "unreplicated_keys": 0, "data": WRITTEN_AT_A,
                                "unreplicated": {}}
    assert kv["nodes"]["b"]["unreplicated"] == {"k1": 1}
    assert kv["in_flight_replications"] == 1
    code, out, _ = beaver(capsys, "show", "--db", str(kv_db))
    assert out.startswith("run 1 (") and "beaver, kv," in out.splitlines()[0]


def test_offline_restore_applies_the_in_flight_batch(kv_db: Path, capsys) -> None:
    code, out, _ = beaver(capsys, "restore", "1", "--db", str(kv_db), "--offline", "--json")
    assert code == 0
    report = json.loads(out.splitlines()[-1])
    assert report["ok"] and report["service"] == "kv" and report["mismatched_nodes"] == []
    assert report["nodes"]["b"] == {"keys": 3, "unreplicated_keys": 1}
    assert report["stored_keys"] == {"a": 8, "b": 2} and report["in_flight_applied"] == 1
    assert "with the 1 in-flight messages applied" in out and "matches at every node" in out


def test_restored_states_are_the_stored_ones_plus_what_was_in_flight(kv_db: Path) -> None:
    with open_existing(kv_db) as store:
        snapshot = store.snapshot(1, 1)
    expected = restored_states(snapshot, SERVICES["kv"])
    assert expected["a"] == kv_state(WRITTEN_AT_A, {})
    assert expected["b"] == kv_state({"k0": 0, "k1": 1, "k7": 7}, {"k1": 1})
    lost_batch = {**expected, "b": kv_state({"k0": 0, "k1": 1}, {"k1": 1})}
    report = SERVICES["kv"].restore_report(snapshot.node_states(), snapshot.in_flight,
                                           expected, lost_batch, {})
    assert not report["ok"] and report["mismatched_nodes"] == ["b"]


def test_the_summary_says_the_bank_invariant_does_not_apply(kv_db: Path, tmp_path: Path) -> None:
    with open_existing(kv_db) as store:
        summary = summarize(store, 1, kv_db)
    assert summary["service"] == "kv" and summary["accepted"] == 2
    assert summary["invariant_violations"] is None and summary["violating_snapshots"] == []
    assert summary["inconsistent"] is None, "no verdicts stored yet"
    text = format_summary(summary | {"clients": [
        {"sent": 10, "replies": 9, "from_vip": 9, "lost": 1, "unexpected": 0,
         "latency_ms": {"p50": 1.5, "p99": 3.0, "max": 3.0}}]})
    assert "bank invariant: not applicable (the service is kv" in text
    assert "kv client 1: 10 requests, 9 replies (9 from the VIP), 1 unanswered" in text


def test_run_kv_without_wan_delay_needs_tau_min(tmp_path: Path, capsys) -> None:
    db = tmp_path / "never.db"
    code, _, err = beaver(capsys, "run", "--service", "kv", "--wan-delay-ms", "0",
                          "--client-rate", "0", "--db", str(db))
    assert code == 2 and err.count("\n") == 1
    assert "needs --tau-min-us" in err and "--client-rate must be a positive number" in err
    assert not db.exists()
