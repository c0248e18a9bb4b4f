"""The SQLite snapshot store: schema, round trip, durability under SIGKILL, version check."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from controller.store import (
    SCHEMA_VERSION,
    FinishedSnapshot,
    GatewayTiming,
    Store,
    StoredInFlight,
    StoredLocal,
    StoreError,
    open_existing,
)

TABLES = {"runs", "snapshots", "local_states", "in_flight", "gateway_timings", "rejections",
          "node_counters"}


def sample(k: int, valid: bool = True) -> FinishedSnapshot:
    return FinishedSnapshot(
        snapshot_id=k, t0=10.0 + k, t1=10.0 + k + 0.0004, valid=valid, complete=True,
        completed_at=10.5 + k,
        states=(StoredLocal("h1", 10.1 + k, {"balances": {"a": 5}}),
                StoredLocal("h2", 10.2 + k, {"balances": {"b": 7}})),
        in_flight=(StoredInFlight("h2", "h1", 10.3 + k, {"transfer": "t1", "amount": 3}),),
        gateways=(GatewayTiming("g1", 10.0 + k, 10.0 + k + 0.0003, False),
                  GatewayTiming("g2", 10.0 + k, None, True)),
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
    import sys
    sys.path.insert(0, {tests!r})
    from test_store import sample
    from controller.store import Store
    store = Store({path!r})
    run = store.new_run("beaver", {{}}, 33.0, "given")
    k = 0
    while True:
        k += 1
        store.add_snapshot(run, "beaver", sample(k))
        print(k, flush=True)
""")


def test_sigkill_leaves_every_finished_snapshot_readable(tmp_path: Path) -> None:
    path = tmp_path / "beaver.db"
    code = WRITER.format(tests=str(Path(__file__).parent), path=str(path))
    writer = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                              cwd=Path(__file__).parent.parent)
    try:
        assert writer.stdout is not None
        acknowledged = 0
        for line in writer.stdout:  # wait until the writer committed 50 snapshots
            acknowledged = int(line)
            if acknowledged >= 50:
                break
        assert acknowledged >= 50, f"the writer stopped early (exit {writer.poll()})"
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=10)
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()
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
