"""The snapshot database's tables, as SQL (documented for users in ``docs/schema.md``).

:data:`SCHEMA` is version 1 (SQLite's ``user_version``, checked by
:class:`controller.coordinator.store.Store`); ``oracle_verdicts``,
``events`` and ``component_counters`` came later without changing it: they are created (``IF NOT
EXISTS``) on their first write, and older readers ignore them.
"""

SCHEMA = """
CREATE TABLE runs (
    id          INTEGER PRIMARY KEY,
    started     TEXT NOT NULL,
    protocol    TEXT NOT NULL,
    parameters  TEXT NOT NULL,
    tau_min_us  REAL,
    tau_source  TEXT NOT NULL
);
CREATE TABLE snapshots (
    run           INTEGER NOT NULL REFERENCES runs(id),
    snapshot_id   INTEGER NOT NULL,
    protocol      TEXT NOT NULL,
    t0            REAL NOT NULL,
    t1            REAL,
    update_us     REAL,
    valid         INTEGER NOT NULL,
    complete      INTEGER NOT NULL,
    completed_at  REAL,
    stored_at     TEXT NOT NULL,
    PRIMARY KEY (run, snapshot_id)
);
CREATE TABLE local_states (
    run          INTEGER NOT NULL,
    snapshot_id  INTEGER NOT NULL,
    node         TEXT NOT NULL,
    taken_at     REAL NOT NULL,
    state        TEXT NOT NULL,
    PRIMARY KEY (run, snapshot_id, node),
    FOREIGN KEY (run, snapshot_id) REFERENCES snapshots(run, snapshot_id)
);
CREATE TABLE in_flight (
    run          INTEGER NOT NULL,
    snapshot_id  INTEGER NOT NULL,
    receiver     TEXT NOT NULL,
    sender       TEXT NOT NULL,
    received_at  REAL NOT NULL,
    message      TEXT NOT NULL,
    FOREIGN KEY (run, snapshot_id) REFERENCES snapshots(run, snapshot_id)
);
CREATE INDEX in_flight_by_snapshot ON in_flight (run, snapshot_id);
CREATE TABLE gateway_timings (
    run          INTEGER NOT NULL,
    snapshot_id  INTEGER NOT NULL,
    gateway      TEXT NOT NULL,
    sent_at      REAL,
    acked_at     REAL,
    failed       INTEGER NOT NULL,
    PRIMARY KEY (run, snapshot_id, gateway),
    FOREIGN KEY (run, snapshot_id) REFERENCES snapshots(run, snapshot_id)
);
CREATE TABLE rejections (
    run     INTEGER NOT NULL REFERENCES runs(id),
    reason  TEXT NOT NULL,
    count   INTEGER NOT NULL,
    PRIMARY KEY (run, reason)
);
CREATE TABLE node_counters (
    run           INTEGER NOT NULL REFERENCES runs(id),
    node          TEXT NOT NULL,
    delivered     INTEGER,
    rejected      INTEGER,
    malformed     INTEGER,
    sent          INTEGER,
    markers_sent  INTEGER,
    chain_count   INTEGER,
    chain_min_us  REAL,
    PRIMARY KEY (run, node)
);
"""

VERDICTS_SCHEMA = """
CREATE TABLE IF NOT EXISTS oracle_verdicts (
    run              INTEGER NOT NULL,
    snapshot_id      INTEGER NOT NULL,
    captured         INTEGER NOT NULL,
    consistent       INTEGER NOT NULL,
    channel_exact    INTEGER NOT NULL,
    channel_missing  INTEGER NOT NULL,
    channel_extra    INTEGER NOT NULL,
    PRIMARY KEY (run, snapshot_id),
    FOREIGN KEY (run, snapshot_id) REFERENCES snapshots(run, snapshot_id)
);
"""

EVENTS_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    run          INTEGER NOT NULL REFERENCES runs(id),
    process      TEXT NOT NULL,
    role         TEXT NOT NULL,
    seq          INTEGER NOT NULL,
    t            REAL NOT NULL,
    kind         TEXT NOT NULL,
    message      TEXT,
    first_id     INTEGER,
    last_id      INTEGER,
    PRIMARY KEY (run, process, seq)
);
"""

COUNTERS_SCHEMA = """
CREATE TABLE IF NOT EXISTS component_counters (
    run        INTEGER NOT NULL REFERENCES runs(id),
    component  TEXT NOT NULL,
    counter    TEXT NOT NULL,
    value      INTEGER NOT NULL,
    PRIMARY KEY (run, component, counter)
);
"""
