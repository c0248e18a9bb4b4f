"""Reading the snapshot database: runs, snapshots, verdicts, events and counters.

:class:`StoreReaders` is the reading half of
:class:`~controller.coordinator.store.Store` (the writing half is the store
itself): every query a reader of a stored run needs (``beaver show``, ``beaver
restore --offline``, the plots and exports, the benchmarks), over the
connection :class:`~controller.coordinator.database.Database` opened. Tables
that came after version 1 of the schema (``oracle_verdicts``, ``events``,
``component_counters``) may be missing from an older file: reading one then
finds nothing.
"""

from __future__ import annotations

import json
from typing import Any

from beaver.records import GatewayTiming
from controller.coordinator.database import Database
from controller.coordinator.snapshot_records import (
    FinishedSnapshot,
    StoredInFlight,
    StoredLocal,
)

STORED_FAILURE = "failed"
"""A stored gateway timing's ``failure``: the table keeps that an update failed, not why."""


class StoreReaders(Database):
    """The queries over a stored run."""

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

    def component_counters(self, run: int) -> dict[str, dict[str, int]]:
        """Per component of ``run``, its counters by name (none in files from before them)."""
        if not self._has_table("component_counters"):
            return {}
        counters: dict[str, dict[str, int]] = {}
        for row in self._db.execute("SELECT * FROM component_counters WHERE run = ? "
                                    "ORDER BY component, counter", (run,)):
            counters.setdefault(row["component"], {})[row["counter"]] = row["value"]
        return counters

    def node_counters(self, run: int) -> dict[str, dict[str, Any]]:
        rows = self._db.execute("SELECT * FROM node_counters WHERE run = ? ORDER BY node", (run,))
        return {row["node"]: {k: row[k] for k in row.keys() if k not in ("run", "node")}
                for row in rows}
