"""The SQLite snapshot store: schema, round trip, durability under SIGKILL, version check."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from beaver.records import GatewayTiming
from cli.main import main
from controller.coordinator.snapshot_records import json_text
from controller.coordinator.store import (
    SCHEMA_VERSION,
    FinishedSnapshot,
    Store,
    StoredInFlight,
    StoredLocal,
    StoreError,
    open_existing,
)
from oracle import Verdict
from testbed import network

TABLES = {"runs", "snapshots", "local_states", "in_flight", "gateway_timings", "rejections",
          "node_counters"}


def sample(k: int, valid: bool = True) -> FinishedSnapshot:
    return FinishedSnapshot(
        snapshot_id=k, t0=10.0 + k, t1=10.0 + k + 0.0004, valid=valid, complete=True,
        completed_at=10.5 + k,
        states=(StoredLocal("h1", 10.1 + k, {"balances": {"a": 5}}),
                StoredLocal("h2", 10.2 + k, {"balances": {"b": 7}})),
        in_flight=(StoredInFlight("h2", "h1", 10.3 + k, {"transfer": "t1", "amount": 3}),),
        gateways=(GatewayTiming("g1", 10.0 + k, 10.0 + k + 0.0003, None),
                  GatewayTiming("g2", 10.0 + k, None, "failed")),
    )


def test_new_database_has_the_documented_schema(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "results" / "beaver.db"
    Store(path).close()
    with sqlite3.connect(path) as db:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert tables == TABLES
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    schema_doc = (Path(__file__).parent.parent / "docs" / "schema.md").read_text()
    assert all(f"`{table}`" in schema_doc for table in TABLES)


def test_round_trip(tmp_path: Path) -> None:
    with Store(tmp_path / "beaver.db") as store:
        run = store.new_run("beaver", {"gateways": 2, "rate": 20.0}, 5000.0, "measured")
        store.add_snapshot(run, "beaver", sample(1))
        store.add_snapshot(run, "beaver", sample(2, valid=False))
        store.set_rejections(run, {"malformed": 2, "forged": 1})
        assert store.snapshot(run, 1) == sample(1)
        assert store.latest_run() == run
    with open_existing(tmp_path / "beaver.db") as store:
        assert store.run(run)["parameters"] == {"gateways": 2, "rate": 20.0}
        assert store.run(run)["tau_source"] == "measured"
        rows = store.snapshot_rows(run)
        assert [(r["snapshot_id"], r["valid"], r["in_flight"]) for r in rows] == [
            (1, True, 1), (2, False, 1)]
        assert rows[0]["update_us"] == pytest.approx(400.0)
        assert store.rejections(run) == {"forged": 1, "malformed": 2}
        with pytest.raises(KeyError, match="no snapshot 3"):
            store.snapshot(run, 3)


def test_a_snapshot_is_written_whole_or_not_at_all(tmp_path: Path) -> None:
    with Store(tmp_path / "beaver.db") as store:
        run = store.new_run("beaver", {}, None, "none")
        store.add_snapshot(run, "beaver", sample(1))
        broken = sample(2)
        duplicate_node = FinishedSnapshot(**{**broken.__dict__,
                                             "states": broken.states + broken.states[:1]})
        with pytest.raises(sqlite3.IntegrityError):
            store.add_snapshot(run, "beaver", duplicate_node)
        assert [r["snapshot_id"] for r in store.snapshot_rows(run)] == [1]
        with sqlite3.connect(tmp_path / "beaver.db") as db:
            assert db.execute("SELECT count(*) FROM local_states").fetchone()[0] == 2


WRITER = textwrap.dedent("""
    from test_store import sample
    from controller.coordinator.store import Store
    store = Store({path!r})
    run = store.new_run("beaver", {{}}, 33.0, "given")
    k = 0
    while True:
        k += 1
        store.add_snapshot(run, "beaver", sample(k))
        print(k, flush=True)
""")


def killed_after(code: str, committed: int) -> int:
    """Run ``code`` (printing how many snapshots it committed so far, one number a line)
    and SIGKILL it once it printed ``committed``; returns the last number it printed."""
    writer = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                              cwd=Path(__file__).parent)  # python -c imports from its cwd
    try:
        assert writer.stdout is not None
        acknowledged = 0
        for line in writer.stdout:
            acknowledged = int(line)
            if acknowledged >= committed:
                break
        assert acknowledged >= committed, f"the writer stopped early (exit {writer.poll()})"
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=10)
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()
    return acknowledged


def test_sigkill_leaves_every_finished_snapshot_readable(tmp_path: Path) -> None:
    path = tmp_path / "beaver.db"
    acknowledged = killed_after(WRITER.format(path=str(path)), 50)
    with open_existing(path) as store:
        rows = store.snapshot_rows(1)
        ids = [r["snapshot_id"] for r in rows]
        assert ids[:acknowledged] == list(range(1, acknowledged + 1))
        assert ids == list(range(1, len(ids) + 1))
        assert all(store.snapshot(1, k) == sample(k) for k in ids)


def test_unknown_schema_version_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE runs (id INTEGER)")
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    before = path.read_bytes()
    with pytest.raises(StoreError, match=f"schema version {SCHEMA_VERSION + 1}"):
        Store(path)
    assert path.read_bytes() == before


def test_a_foreign_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE notes (text TEXT)")
    with pytest.raises(StoreError, match="left unchanged"):
        Store(path)
    with pytest.raises(StoreError, match="no database"):
        open_existing(tmp_path / "missing.db")
    (tmp_path / "file").write_text("")
    with pytest.raises(StoreError, match="cannot create"):
        Store(tmp_path / "file" / "beaver.db")


# -- beaver show and beaver restore on a database built here ----------------------------------

OPENING = 100


def bank_state(balance: int, debited: list[int], credited: list[int]) -> dict[str, Any]:
    """A shard with one account; transfers of the series a -> b, as stored ranges."""
    return {"balances": {"acct": balance},
            "debited": {SERIES: [[n, n] for n in debited]} if debited else {},
            "credited": {SERIES: [[n, n] for n in credited]} if credited else {}}


SERIES = "a.0>b"


def credit(n: int, amount: int) -> dict[str, Any]:
    return {"kind": "credit", "transfer": f"{SERIES}:{n}", "amount": amount, "account": "b/0"}


@pytest.fixture
def bank_db(tmp_path: Path) -> Path:
    """Run 1 of a two-node bank: snapshot 1 consistent (7 in flight a -> b), 2 not."""
    path = tmp_path / "bank.db"
    with Store(path) as store:
        run = store.new_run("beaver", {"service": "bank", "initial_total": 2 * OPENING,
                                       "gateways": 1}, 5000.0, "given (--tau-min-us)")
        consistent = FinishedSnapshot(
            1, 1.0, 1.0002, True, True, 1.1,
            (StoredLocal("a", 1.01, bank_state(OPENING - 7 - 3, [1, 2], [])),
             StoredLocal("b", 1.02, bank_state(OPENING + 3, [], [2]))),
            (StoredInFlight("b", "a", 1.05, credit(1, 7)),),
            (GatewayTiming("gw1", 1.0, 1.0002, None),),
        )
        effect_without_cause = FinishedSnapshot(
            2, 2.0, 2.0003, True, True, 2.1,
            (StoredLocal("a", 2.01, bank_state(OPENING, [], [])),
             StoredLocal("b", 2.02, bank_state(OPENING + 5, [], [9]))),
            (), (GatewayTiming("gw1", 2.0, 2.0003, None),),
        )
        store.add_snapshot(run, "beaver", consistent)
        store.add_snapshot(run, "beaver", effect_without_cause)
        store.set_rejections(run, {"forged": 1})
    return path


def beaver(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_show_lists_the_snapshots_of_the_newest_run(bank_db: Path, capsys) -> None:
    code, out, _ = beaver(capsys, "show", "--db", str(bank_db))
    assert code == 0
    assert "2 snapshots, 2 valid, 2 complete" in out and "forged 1" in out
    code, out, _ = beaver(capsys, "show", "--db", str(bank_db), "--json")
    document = json.loads(out)
    assert [s["snapshot_id"] for s in document["snapshots"]] == [1, 2]
    assert [s["in_flight"] for s in document["snapshots"]] == [1, 0]
    assert document["tau_min_us"] == 5000.0 and document["rejections"] == {"forged": 1}


def test_show_gives_the_oracle_verdicts_once_a_run_is_judged(bank_db: Path, capsys) -> None:
    code, out, _ = beaver(capsys, "show", "--db", str(bank_db))
    assert code == 0 and "INCONSISTENT" not in out, "an unjudged run has no verdicts"
    with Store(bank_db) as store:
        store.set_verdicts(1, [Verdict(1, True, True, True, 0, 0),
                               Verdict(2, True, False, True, 0, 0)])
    code, out, _ = beaver(capsys, "show", "--db", str(bank_db))
    rows = {line.split()[0]: line.split()[-1] for line in out.splitlines()[2:4]}
    assert rows == {"1": "consistent", "2": "INCONSISTENT"}
    code, out, _ = beaver(capsys, "show", "2", "--db", str(bank_db), "--json")
    assert json.loads(out)["oracle"]["consistent"] is False
    code, out, _ = beaver(capsys, "show", "2", "--db", str(bank_db))
    assert "oracle (ground truth): INCONSISTENT" in out


def test_show_json_is_enough_to_recheck_the_bank_invariant(bank_db: Path, capsys) -> None:
    code, out, _ = beaver(capsys, "show", "1", "--db", str(bank_db), "--json")
    assert code == 0
    bank = json.loads(out)["bank"]
    # the recheck, from the JSON alone
    debited = {t for node in bank["nodes"].values() for t in node["debited"]}
    credited = {t for node in bank["nodes"].values() for t in node["credited"]}
    moving = {t["transfer"]: t["amount"] for t in bank["in_flight"]}
    held = sum(sum(node["balances"].values()) for node in bank["nodes"].values())
    assert credited <= debited and set(moving) <= debited - credited
    assert held + sum(moving.values()) == bank["initial_total"] == 2 * OPENING
    assert bank["violations"] == []
    code, out, _ = beaver(capsys, "show", "2", "--db", str(bank_db), "--json")
    violations = json.loads(out)["bank"]["violations"]
    assert len(violations) == 2  # 9 credited but never debited; more money than opened
    assert any(f"{SERIES}:9" in v for v in violations)
    code, out, _ = beaver(capsys, "show", "2", "--db", str(bank_db))
    assert "2 violations" in out and "gateway gw1: acked 300 us after t0" in out


def test_show_refuses_bad_input_in_one_line(bank_db: Path, tmp_path: Path, capsys) -> None:
    code, _, err = beaver(capsys, "show", "9", "--db", str(bank_db))
    assert code == 2 and err.count("\n") == 1 and "no snapshot 9" in err
    code, _, err = beaver(capsys, "show", "--run", "4", "--db", str(bank_db))
    assert code == 2 and "no run 4" in err
    code, _, err = beaver(capsys, "show", "--db", str(tmp_path / "none.db"))
    assert code == 2 and err.count("\n") == 1 and "no database" in err
    assert not (tmp_path / "none.db").exists()


def test_restore_offline_redelivers_in_flight_money(bank_db: Path, capsys) -> None:
    code, out, _ = beaver(capsys, "restore", "1", "--db", str(bank_db), "--offline", "--json")
    assert code == 0
    report = json.loads(out.splitlines()[-1])
    assert report["ok"] and report["violations"] == []
    assert report["balances"] == {"a": OPENING - 10, "b": OPENING + 3 + 7}
    assert report["mismatched_nodes"] == []
    assert report["restored_total"] == report["snapshot_total"] == 2 * OPENING


def test_restore_of_an_inconsistent_snapshot_says_so(bank_db: Path, capsys) -> None:
    code, out, _ = beaver(capsys, "restore", "2", "--db", str(bank_db), "--offline")
    assert code == 1
    assert "2 violations" in out and f"{SERIES}:9" in out
    code, _, err = beaver(capsys, "restore", "3", "--db", str(bank_db), "--offline")
    assert code == 2 and "no snapshot 3" in err


def test_run_refuses_nonsense_and_a_machine_without_ovs(monkeypatch, tmp_path: Path,
                                                        capsys) -> None:
    db = tmp_path / "never.db"
    code, _, err = beaver(capsys, "run", "--rate", "0", "--gateways", "9", "--db", str(db))
    assert code == 2 and err.count("\n") == 1
    assert "--rate must be a positive number" in err and "--gateways must be in 1..8" in err
    for window in ("0", "128"):
        code, _, err = beaver(capsys, "run", "--window", window, "--db", str(db))
        assert code == 2 and err.count("\n") == 1 and "--window must be in 1..127" in err
    monkeypatch.setattr(network, "ovs_problem", lambda: "needs root")
    code, _, err = beaver(capsys, "run", "--db", str(db))
    assert code == 1 and err.count("\n") == 1 and "needs root" in err and "setup.sh" in err
    assert not db.exists()


def test_live_restore_without_ovs_points_to_offline(bank_db: Path, monkeypatch, capsys) -> None:
    monkeypatch.setattr(network, "ovs_problem", lambda: "needs root")
    code, _, err = beaver(capsys, "restore", "1", "--db", str(bank_db))
    assert code == 1 and err.count("\n") == 1 and "--offline" in err


def test_snapshots_written_together_are_stored_all_or_none(tmp_path: Path) -> None:
    with Store(tmp_path / "beaver.db") as store:
        run = store.new_run("beaver", {}, 33.0, "given")
        store.add_snapshots(run, "beaver", [sample(1), sample(2)])
        with pytest.raises(sqlite3.IntegrityError):
            store.add_snapshots(run, "beaver", [sample(3), sample(2)])
        assert [r["snapshot_id"] for r in store.snapshot_rows(run)] == [1, 2]
        encoded = replace(sample(4), states=tuple(
            replace(s, state_json=json_text(s.state)) for s in sample(4).states))
        store.add_snapshots(run, "beaver", [encoded])
        assert store.snapshot(run, 4) == sample(4)
