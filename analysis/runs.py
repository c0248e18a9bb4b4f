"""A stored run as tidy pandas tables: what ``beaver export`` writes and ``beaver compare``
reads.

One :class:`pandas.DataFrame` per table of the snapshot database
(``docs/schema.md``), restricted to one run, one row per observation. The
``snapshots`` table has the oracle's verdicts joined in (``oracle_*``
columns, empty where the run was not judged), and the JSON columns
(states, messages, parameters) stay JSON text, ready for ``json.loads``.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pandas as pd

TABLES = ("runs", "snapshots", "local_states", "in_flight", "gateway_timings", "rejections",
          "node_counters", "events")
VERDICT_COLUMNS = ("captured", "consistent", "channel_exact", "channel_missing",
                   "channel_extra")


def run_tables(db: Path, run: int) -> dict[str, pd.DataFrame]:
    """Every table of ``db`` for ``run`` (read-only; tables the file lacks come out empty)."""
    connection = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        present = {row[0] for row in connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
        frames = {}
        for table in TABLES:
            if table not in present:
                frames[table] = pd.DataFrame()
                continue
            key = "id" if table == "runs" else "run"
            frames[table] = pd.read_sql_query(f"SELECT * FROM {table} WHERE {key} = ?",
                                              connection, params=(run,))
        verdicts = (pd.read_sql_query("SELECT * FROM oracle_verdicts WHERE run = ?",
                                      connection, params=(run,))
                    if "oracle_verdicts" in present else pd.DataFrame(
                        columns=["run", "snapshot_id", *VERDICT_COLUMNS]))
    finally:
        connection.close()
    verdicts = verdicts.rename(columns={c: f"oracle_{c}" for c in VERDICT_COLUMNS})
    frames["snapshots"] = frames["snapshots"].merge(verdicts, on=["run", "snapshot_id"],
                                                    how="left")
    return frames


def export(db: Path, run: int, folder: Path) -> list[Path]:
    """Write one CSV per table of ``run`` into ``folder``; returns the paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for table, frame in run_tables(db, run).items():
        path = folder / f"{table}.csv"
        frame.to_csv(path, index=False)
        paths.append(path)
    return paths


def measures(db: Path, run: int) -> dict[str, float | str | None]:
    """What ``beaver compare`` sets side by side for one run."""
    tables = run_tables(db, run)
    runs, snapshots = tables["runs"], tables["snapshots"]
    accepted = snapshots[(snapshots["valid"] == 1) & (snapshots["complete"] == 1)]
    judged = snapshots["oracle_consistent"].notna()
    t0 = snapshots["t0"].sort_values()
    span = float(t0.iloc[-1] - t0.iloc[0]) if len(t0) > 1 else 0.0
    updates = snapshots["update_us"].dropna()

    def quantile(share: float) -> float | None:
        return float(updates.quantile(share)) if len(updates) else None

    return {
        "protocol": str(runs["protocol"].iloc[0]),
        "snapshots": len(snapshots),
        "accepted": len(accepted),
        "accepted_fraction": len(accepted) / len(snapshots) if len(snapshots) else None,
        "inconsistent": int((snapshots.loc[judged, "oracle_consistent"] == 0).sum())
        if judged.any() else None,
        "inconsistent_accepted": int((accepted["oracle_consistent"] == 0).sum())
        if judged.any() else None,
        "t1_t0_p50_us": quantile(0.5),
        "t1_t0_p99_us": quantile(0.99),
        "start_rate_hz": (len(t0) - 1) / span if span > 0 else None,
        "in_flight_per_snapshot": len(tables["in_flight"]) / len(snapshots)
        if len(snapshots) else None,
    }
