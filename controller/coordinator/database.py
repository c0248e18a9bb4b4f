"""Opening the snapshot database: the file, its schema version, read-only connections.

:class:`Database` holds the one SQLite connection of a
:class:`~controller.coordinator.store.Store`. Opening a file for writing makes
the schema if the file is new (:data:`~controller.coordinator.schema.SCHEMA`,
SQLite's ``user_version`` :data:`SCHEMA_VERSION`) and sets how commits reach
the disk (:data:`WRITE_SETTINGS`); a file with another version, or a non-empty
file that is not a testbed database, is refused with
:class:`NotATestbedDatabase` and never altered. A read-only database is opened
with SQLite's ``mode=ro`` (:func:`connect_read_only`): it writes nothing,
works on a file this user may not write, and refuses an empty file instead of
making it a database.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Self

from controller.coordinator.schema import SCHEMA

DEFAULT_DB = Path("results") / "beaver.db"
SCHEMA_VERSION = 1

WRITE_SETTINGS = ("PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL")
"""How a writing connection commits: to the write-ahead log, without an fsync per
commit. A commit with ``synchronous=FULL`` (SQLite's default) waits for the disk, which
at a hundred snapshots a second held the coordinator's event loop for most of its time."""


class StoreError(RuntimeError):
    """A database this version of the testbed cannot use (reported as one line)."""


class NotATestbedDatabase(StoreError):
    """The file is not a snapshot database of this version (bad input: exit status 2)."""


class Database:
    """One connection to a snapshot database, used from one thread at a time."""

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

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _has_table(self, name: str) -> bool:
        return self._db.execute("SELECT 1 FROM sqlite_master WHERE name = ?",
                                (name,)).fetchone() is not None


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
