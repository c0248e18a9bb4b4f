"""Where finished snapshots go: one SQLite file a user can query with sqlite3 or pandas.

:class:`Store` is that file's writer; opening it (schema version, read-only
connections) is :mod:`controller.coordinator.database`'s job, reading it
:mod:`controller.coordinator.store_readers`'.

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
in one transaction (with the others that finished in the same turn of the
coordinator's loop), so a run killed at any instant (even SIGKILL) leaves a
readable database holding every snapshot stored before the kill, each whole. A commit
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

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from controller.coordinator.database import (
    DEFAULT_DB,
    SCHEMA_VERSION,
    WRITE_SETTINGS,
    NotATestbedDatabase,
    StoreError,
)
from controller.coordinator.schema import COUNTERS_SCHEMA, EVENTS_SCHEMA, VERDICTS_SCHEMA
from controller.coordinator.snapshot_records import (
    FinishedSnapshot,
    StoredInFlight,
    StoredLocal,
    json_text,
)
from controller.coordinator.store_readers import STORED_FAILURE, StoreReaders
from oracle import Verdict

__all__ = [
    "DEFAULT_DB", "NODE_COUNTERS", "SCHEMA_VERSION", "STORED_FAILURE", "WRITE_SETTINGS",
    "FinishedSnapshot", "NotATestbedDatabase", "Store", "StoreError", "StoredInFlight",
    "StoredLocal", "open_existing", "open_read_only",
]

NODE_COUNTERS = ("delivered", "rejected", "malformed", "sent", "markers_sent", "chain_count")
EVENT_KINDS = ("send", "receive", "capture")


class Store(StoreReaders):
    """The snapshot database; one connection, used from one thread at a time. Opening is
    :class:`~controller.coordinator.database.Database`'s, reading
    :class:`~controller.coordinator.store_readers.StoreReaders`'; what follows writes."""

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
        """Write snapshots that finished together, all or nothing, in one transaction (one
        statement per table for all of them)."""
        snapshots = list(snapshots)
        stored_at = datetime.now(UTC).isoformat(timespec="milliseconds")
        with self._db:
            self._db.executemany(
                "INSERT INTO snapshots (run, snapshot_id, protocol, t0, t1, update_us, valid, "
                "complete, completed_at, stored_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(run, s.snapshot_id, protocol, s.t0, s.t1, s.update_us, int(s.valid),
                  int(s.complete), s.completed_at, stored_at) for s in snapshots],
            )
            self._db.executemany(
                "INSERT INTO local_states VALUES (?, ?, ?, ?, ?)",
                [(run, s.snapshot_id, local.node, local.taken_at,
                  local.state_json or json_text(local.state))
                 for s in snapshots for local in s.states],
            )
            self._db.executemany(
                "INSERT INTO in_flight VALUES (?, ?, ?, ?, ?, ?)",
                [(run, s.snapshot_id, m.receiver, m.sender, m.received_at, json_text(m.message))
                 for s in snapshots for m in s.in_flight],
            )
            self._db.executemany(
                "INSERT INTO gateway_timings VALUES (?, ?, ?, ?, ?, ?)",
                [(run, s.snapshot_id, g.gateway, g.sent_at, g.acked_at, int(g.failed))
                 for s in snapshots for g in s.gateways],
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

    def set_component_counters(self, run: int, component: str,
                               counters: Mapping[str, int]) -> None:
        """A component's integer counters (replacing earlier values of the same names)."""
        with self._db:
            self._db.execute(COUNTERS_SCHEMA)
            self._db.executemany(
                "INSERT OR REPLACE INTO component_counters VALUES (?, ?, ?, ?)",
                [(run, component, name, value) for name, value in sorted(counters.items())])


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

