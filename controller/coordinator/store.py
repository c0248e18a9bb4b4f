"""Where finished snapshots go: one SQLite file a user can query with sqlite3 or pandas.

The model (documented for users in ``docs/schema.md``):

* ``runs``: one row per ``beaver run`` (protocol, parameters as JSON, the
  tau_min used for validity and where it came from).
* ``snapshots``: one row per snapshot of a run, keyed by ``(run, snapshot_id)``:
  t0 and t1 on the coordinator's ``time.monotonic()`` clock, ``update_us`` =
  t1 - t0, validity and completeness exactly as the protocol core decided.
* ``local_states``: each node's recorded state for the snapshot (JSON).
* ``in_flight``: the channel state, one row per recorded in-group message.
* ``gateway_timings``: per gateway, when the update was sent and acknowledged
  (or that it failed).
* ``rejections``: per run, how many agent reports the coordinator refused,
  by reason; ``node_counters``: the agents' own counters.
* ``oracle_verdicts``: per snapshot, the ground-truth oracle's judgement
  (:mod:`testbed.truth`): causally consistent, channel state exact.
* ``events``: the ground-truth event log of every process of a run (sends,
  receives, capture points, in each process's order), from which
  ``beaver show ID --diagram`` draws a snapshot's space-time diagram.
* ``component_counters``: per run, every component's counters by name (an
  agent's retransmissions, each component's input rejected by reason, as
  ``malformed_by.<reason>``).

Durability: the file is in WAL mode and every finished snapshot is written
in one transaction (with the others that finished at the same moment, as one
report completes several), so a run killed at any instant (even SIGKILL) leaves a
readable database holding every snapshot finished before the kill. A commit
is in the write-ahead log, in the kernel's page cache, when it returns; the
connection runs with ``synchronous=NORMAL``, so the log is flushed to the disk
at checkpoints, not at every commit (:data:`WRITE_SETTINGS`): a crash of the
machine itself (power, kernel) may lose the last snapshots, never corrupt
the file; the death of the process loses nothing committed.

The schema is versioned with SQLite's ``user_version``. A file with another
version (or a non-empty file that is not a testbed database) is refused
with :class:`NotATestbedDatabase`, never altered. Readers (``beaver show``,
``beaver restore --offline``) open with :func:`open_read_only`: SQLite's
``mode=ro``, so they write nothing, work on a file they may not write, and
refuse an empty file instead of making it a database.

A run's row is written before its network starts (the coordinator needs its
id); a start-up that fails before any snapshot is stored takes it back
(:meth:`Store.discard_run`). ``beaver restore`` stores its verification run
beside the runs it checks, with ``restore_of`` in its parameters;
:meth:`Store.latest_run` skips those unless asked. ``oracle_verdicts`` came after
version 1 without changing it: it is created (``IF NOT EXISTS``) on the
first write of verdicts, and reading a file without it finds no verdicts;
older readers ignore the extra table. ``events`` and ``component_counters``
came the same way.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from beaver.records import GatewayTiming
from controller.coordinator.schema import (
    COUNTERS_SCHEMA,
    EVENTS_SCHEMA,
    SCHEMA,
    VERDICTS_SCHEMA,
)
from controller.coordinator.snapshot_records import (
    FinishedSnapshot,
    StoredInFlight,
    StoredLocal,
    json_text,
)
from oracle import Verdict

DEFAULT_DB = Path("results") / "beaver.db"
SCHEMA_VERSION = 1
STORED_FAILURE = "failed"
"""A stored gateway timing's ``failure``: the table keeps that an update failed, not why."""
NODE_COUNTERS = ("delivered", "rejected", "malformed", "sent", "markers_sent", "chain_count")

WRITE_SETTINGS = ("PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL")
"""How a writing connection commits: to the write-ahead log, without an fsync per
commit. A commit with ``synchronous=FULL`` (SQLite's default) waits for the disk, which
at a hundred snapshots a second held the coordinator's event loop for most of its time."""

EVENT_KINDS = ("send", "receive", "capture")


class StoreError(RuntimeError):
    """A database this version of the testbed cannot use (reported as one line)."""


class NotATestbedDatabase(StoreError):
    """The file is not a snapshot database of this version (bad input: exit status 2)."""




class Store:
    """The snapshot database; one connection, used from one thread at a time."""

    def __init__(self, path: str | Path = DEFAULT_DB, read_only: bool = False):
        """Open (or, unless ``read_only``, create) the database at ``path``."""
        self.path = Path(path)
        self.read_only = read_only
        try:
            if not read_only:
                self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise StoreError(f"cannot create {self.path.parent}: {error.strerror}") from None
        try:
            if read_only:
                self._db = connect_read_only(self.path)
            else:
                self._db = sqlite3.connect(self.path, check_same_thread=False)
            self._db.row_factory = sqlite3.Row
            self._open_schema()
        except sqlite3.DatabaseError as error:
            self.close_quietly()
            raise NotATestbedDatabase(
                f"{self.path}: not a usable SQLite database ({error})") from None
        except StoreError:
            self.close_quietly()
            raise

    def close_quietly(self) -> None:
        """Close the connection if it was opened (a refused file leaves none behind)."""
        if hasattr(self, "_db"):
            self._db.close()

    def _open_schema(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version == SCHEMA_VERSION:
            if not self.read_only:
                self._write_settings()
            return
        if version == 0 and self.read_only:
            raise NotATestbedDatabase(f"{self.path} is not a testbed database (no schema): "
                                      "it was left unchanged")
        if version != 0:
            raise NotATestbedDatabase(
                f"{self.path} has schema version {version}; this testbed reads version "
                f"{SCHEMA_VERSION} only (it was left unchanged: use another --db)"
            )
        tables = self._db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        if tables:
            raise NotATestbedDatabase(
                f"{self.path} holds tables but no testbed schema version; "
                "it was left unchanged: use another --db"
            )
        self._write_settings()
        self._db.executescript(f"BEGIN; {SCHEMA} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;")

    def _write_settings(self) -> None:
        for pragma in WRITE_SETTINGS:
            self._db.execute(pragma)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing -------------------------------------------------------------------------

    def new_run(
        self,
        protocol: str,
        parameters: Mapping[str, Any],
        tau_min_us: float | None,
        tau_source: str,
    ) -> int:
        with self._db:
            cursor = self._db.execute(
                "INSERT INTO runs (started, protocol, parameters, tau_min_us, tau_source) "
                "VALUES (?, ?, ?, ?, ?)",
                (datetime.now(UTC).isoformat(timespec="seconds"), protocol,
                 json_text(dict(parameters)), tau_min_us, tau_source),
            )
        return int(cursor.lastrowid or 0)

    @contextmanager
    def discarding_if_empty(self, run: int) -> Iterator[None]:
        """Around a run's start-up and snapshots: on any failure, or Ctrl-C, a run that
        stored no snapshot is deleted (:meth:`discard_run`), so none is left pending."""
        try:
            yield
        except BaseException:
            self.discard_run(run)
            raise

    def discard_run(self, run: int) -> bool:
        """Delete ``run`` if it stored no snapshot yet (a failed start-up); True if deleted."""
        with self._db:
            if self._db.execute("SELECT 1 FROM snapshots WHERE run = ? LIMIT 1",
                                (run,)).fetchone():
                return False
            for table in ("rejections", "node_counters"):
                self._db.execute(f"DELETE FROM {table} WHERE run = ?", (run,))
            self._db.execute("DELETE FROM runs WHERE id = ?", (run,))
        return True

    def set_tau_min(self, run: int, tau_min_us: float | None, tau_source: str) -> None:
        with self._db:
            self._db.execute(
                "UPDATE runs SET tau_min_us = ?, tau_source = ? WHERE id = ?",
                (tau_min_us, tau_source, run),
            )

    def revoke_validity(self, run: int, snapshot_ids: Iterable[int]) -> None:
        """Mark stored snapshots invalid (a shorter external chain lowered tau_min)."""
        with self._db:
            self._db.executemany(
                "UPDATE snapshots SET valid = 0 WHERE run = ? AND snapshot_id = ?",
                [(run, k) for k in snapshot_ids],
            )

    def add_snapshot(self, run: int, protocol: str, snapshot: FinishedSnapshot) -> None:
        """Write one snapshot with its states, messages and timings, all or nothing."""
        self.add_snapshots(run, protocol, [snapshot])

    def add_snapshots(self, run: int, protocol: str,
                      snapshots: Iterable[FinishedSnapshot]) -> None:
        """Write snapshots that finished together, all or nothing, in one transaction."""
        with self._db:
            for snapshot in snapshots:
                self._insert_snapshot(run, protocol, snapshot)

    def _insert_snapshot(self, run: int, protocol: str, snapshot: FinishedSnapshot) -> None:
        k = snapshot.snapshot_id
        self._db.execute(
            "INSERT INTO snapshots (run, snapshot_id, protocol, t0, t1, update_us, valid, "
            "complete, completed_at, stored_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (run, k, protocol, snapshot.t0, snapshot.t1, snapshot.update_us,
             int(snapshot.valid), int(snapshot.complete), snapshot.completed_at,
             datetime.now(UTC).isoformat(timespec="milliseconds")),
        )
        self._db.executemany(
            "INSERT INTO local_states VALUES (?, ?, ?, ?, ?)",
            [(run, k, s.node, s.taken_at, s.state_json or json_text(s.state))
             for s in snapshot.states],
        )
        self._db.executemany(
            "INSERT INTO in_flight VALUES (?, ?, ?, ?, ?, ?)",
            [(run, k, m.receiver, m.sender, m.received_at, json_text(m.message))
             for m in snapshot.in_flight],
        )
        self._db.executemany(
            "INSERT INTO gateway_timings VALUES (?, ?, ?, ?, ?, ?)",
            [(run, k, g.gateway, g.sent_at, g.acked_at, int(g.failed))
             for g in snapshot.gateways],
        )

    def set_rejections(self, run: int, counts: Mapping[str, int]) -> None:
        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO rejections VALUES (?, ?, ?)",
                [(run, reason, count) for reason, count in counts.items()],
            )

    def set_node_counters(self, run: int, counters: Mapping[str, Mapping[str, Any]]) -> None:
        """The agents' final counters (fields of the management ``counters`` message)."""
        rows = []
        for node, c in counters.items():
            chain = c.get("chain_min")
            rows.append((run, node, *(c.get(name) for name in NODE_COUNTERS),
                         None if chain is None else chain * 1e6))
        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO node_counters VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)

    def set_verdicts(self, run: int, verdicts: Iterable[Verdict]) -> None:
        """The oracle's verdicts on snapshots of ``run`` (replacing earlier ones)."""
        rows = [(run, v.snapshot_id, int(v.captured), int(v.consistent), int(v.channel_exact),
                 v.channel_missing, v.channel_extra) for v in verdicts]
        with self._db:
            self._db.execute(VERDICTS_SCHEMA)
            self._db.executemany(
                "INSERT OR REPLACE INTO oracle_verdicts VALUES (?, ?, ?, ?, ?, ?, ?)", rows)

    def set_events(self, run: int, rows: Iterable[Mapping[str, Any]]) -> None:
        """The event logs of ``run`` (replacing earlier ones): rows with ``process``,
        ``role``, ``t``, ``kind`` (send, receive, capture) and ``message`` (send and
        receive) or ``first_id`` and ``last_id`` (capture), each process's in order."""
        seq: dict[str, int] = {}
        values = []
        for row in rows:
            if row["kind"] not in EVENT_KINDS:
                raise ValueError(f"unknown event kind {row['kind']!r}")
            number = seq[row["process"]] = seq.get(row["process"], -1) + 1
            values.append((run, row["process"], row["role"], number, float(row["t"]),
                           row["kind"], row.get("message"), row.get("first_id"),
                           row.get("last_id")))
        with self._db:
            self._db.execute(EVENTS_SCHEMA)
            self._db.execute("DELETE FROM events WHERE run = ?", (run,))
            self._db.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", values)

    def events(self, run: int) -> list[dict[str, Any]]:
        """The stored event logs of ``run``, process by process, each in its order
        (none if the run kept no events)."""
        if not self._has_table("events"):
            return []
        rows = self._db.execute(
            "SELECT process, role, t, kind, message, first_id, last_id FROM events "
            "WHERE run = ? ORDER BY process, seq", (run,))
        return [dict(row) for row in rows]

    def verdicts(self, run: int) -> dict[int, dict[str, Any]]:
        """The stored verdicts of ``run`` by snapshot id (none if never judged)."""
        if not self._has_table("oracle_verdicts"):
            return {}
        rows = self._db.execute(
            "SELECT * FROM oracle_verdicts WHERE run = ? ORDER BY snapshot_id", (run,))
        return {
            row["snapshot_id"]: {
                "captured": bool(row["captured"]), "consistent": bool(row["consistent"]),
                "channel_exact": bool(row["channel_exact"]),
                "channel_missing": row["channel_missing"], "channel_extra": row["channel_extra"],
            }
            for row in rows
        }

    def set_component_counters(self, run: int, component: str,
                               counters: Mapping[str, int]) -> None:
        """A component's integer counters (replacing earlier values of the same names)."""
        with self._db:
            self._db.execute(COUNTERS_SCHEMA)
            self._db.executemany(
                "INSERT OR REPLACE INTO component_counters VALUES (?, ?, ?, ?)",
                [(run, component, name, value) for name, value in sorted(counters.items())])

    def component_counters(self, run: int) -> dict[str, dict[str, int]]:
        """Per component of ``run``, its counters by name (none in files from before them)."""
        if not self._has_table("component_counters"):
            return {}
        counters: dict[str, dict[str, int]] = {}
        for row in self._db.execute("SELECT * FROM component_counters WHERE run = ? "
                                    "ORDER BY component, counter", (run,)):
            counters.setdefault(row["component"], {})[row["counter"]] = row["value"]
        return counters

    def _has_table(self, name: str) -> bool:
        return self._db.execute("SELECT 1 FROM sqlite_master WHERE name = ?",
                                (name,)).fetchone() is not None

    def node_counters(self, run: int) -> dict[str, dict[str, Any]]:
        rows = self._db.execute("SELECT * FROM node_counters WHERE run = ? ORDER BY node", (run,))
        return {row["node"]: {k: row[k] for k in row.keys() if k not in ("run", "node")}
                for row in rows}

    # -- reading -------------------------------------------------------------------------

    def latest_run(self, restore_checks: bool = False) -> int | None:
        """The newest run of ``beaver run`` (with ``restore_checks``: of any kind)."""
        query = "SELECT max(id) FROM runs"
        if not restore_checks:
            query += " WHERE json_extract(parameters, '$.restore_of') IS NULL"
        row = self._db.execute(query).fetchone()
        return None if row[0] is None else int(row[0])

    def run(self, run: int) -> dict[str, Any]:
        row = self._db.execute("SELECT * FROM runs WHERE id = ?", (run,)).fetchone()
        if row is None:
            raise KeyError(f"no run {run} in {self.path}")
        result = dict(row)
        result["parameters"] = json.loads(result["parameters"])
        return result

    def rejections(self, run: int) -> dict[str, int]:
        rows = self._db.execute(
            "SELECT reason, count FROM rejections WHERE run = ? ORDER BY reason", (run,)
        )
        return {row["reason"]: row["count"] for row in rows}

    def snapshot_rows(self, run: int) -> list[dict[str, Any]]:
        """The summary row of every stored snapshot of ``run``, by id."""
        rows = self._db.execute(
            "SELECT snapshot_id, t0, t1, update_us, valid, complete, completed_at, "
            "(SELECT count(*) FROM in_flight m WHERE m.run = s.run "
            " AND m.snapshot_id = s.snapshot_id) AS in_flight "
            "FROM snapshots s WHERE run = ? ORDER BY snapshot_id",
            (run,),
        )
        return [dict(row) | {"valid": bool(row["valid"]), "complete": bool(row["complete"])}
                for row in rows]

    def in_flight_messages(self, run: int) -> list[tuple[int, Any]]:
        """(snapshot id, message) of every in-flight row of ``run``."""
        rows = self._db.execute(
            "SELECT snapshot_id, message FROM in_flight WHERE run = ? ORDER BY snapshot_id",
            (run,))
        return [(row["snapshot_id"], json.loads(row["message"])) for row in rows]

    def snapshot(self, run: int, snapshot_id: int) -> FinishedSnapshot:
        row = self._db.execute(
            "SELECT * FROM snapshots WHERE run = ? AND snapshot_id = ?", (run, snapshot_id)
        ).fetchone()
        if row is None:
            raise KeyError(f"no snapshot {snapshot_id} in run {run} of {self.path}")
        key = (run, snapshot_id)
        states = tuple(
            StoredLocal(r["node"], r["taken_at"], json.loads(r["state"]))
            for r in self._db.execute(
                "SELECT * FROM local_states WHERE run = ? AND snapshot_id = ? ORDER BY node", key
            )
        )
        in_flight = tuple(
            StoredInFlight(r["receiver"], r["sender"], r["received_at"], json.loads(r["message"]))
            for r in self._db.execute(
                "SELECT * FROM in_flight WHERE run = ? AND snapshot_id = ? "
                "ORDER BY received_at, receiver, sender", key
            )
        )
        gateways = tuple(
            GatewayTiming(r["gateway"], r["sent_at"], r["acked_at"],
                          STORED_FAILURE if r["failed"] else None)
            for r in self._db.execute(
                "SELECT * FROM gateway_timings WHERE run = ? AND snapshot_id = ? "
                "ORDER BY gateway", key
            )
        )
        return FinishedSnapshot(
            snapshot_id=snapshot_id, t0=row["t0"], t1=row["t1"], valid=bool(row["valid"]),
            complete=bool(row["complete"]), completed_at=row["completed_at"],
            states=states, in_flight=in_flight, gateways=gateways,
        )


def connect_read_only(path: Path) -> sqlite3.Connection:
    """A ``mode=ro`` connection. A WAL database in a folder this user may not write cannot
    get its shared-memory index; when no write-ahead log exists (no writer has the file
    open), it is read as immutable instead."""
    uri = path.resolve().as_uri()
    connection = sqlite3.connect(f"{uri}?mode=ro", uri=True, check_same_thread=False)
    try:
        connection.execute("PRAGMA user_version").fetchone()
        return connection
    except sqlite3.OperationalError:
        connection.close()
        if path.with_name(path.name + "-wal").exists():
            raise
    return sqlite3.connect(f"{uri}?mode=ro&immutable=1", uri=True, check_same_thread=False)


def open_existing(path: str | Path) -> Store:
    """A store to add to: a missing file, or one that is not a testbed database yet (an
    empty file too), is an error rather than a new database."""
    open_read_only(path).close()
    return Store(path)


def open_read_only(path: str | Path) -> Store:
    """A store for reading only (``mode=ro``): nothing is ever written to the file."""
    if not Path(path).is_file():
        raise StoreError(f"no database at {path} (make one with: beaver run --db {path})")
    return Store(path, read_only=True)

