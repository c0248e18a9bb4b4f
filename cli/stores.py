"""Opening the snapshot database for the commands that read what ``beaver run`` stored."""

from __future__ import annotations

from pathlib import Path

from cli.errors import CommandFailed, UsageError
from controller.coordinator.store import (
    NotATestbedDatabase,
    Store,
    StoreError,
    open_existing,
    open_read_only,
)


def open_store(path: Path, *, read_only: bool) -> Store:
    """The database at ``path``, read-only or to add to (it must exist either way).

    A file that is not a testbed database is bad input (:class:`UsageError`,
    exit 2); one that cannot be used otherwise is the command's failure
    (:class:`CommandFailed`, exit 1). The file is never changed by opening.
    """
    try:
        return open_read_only(path) if read_only else open_existing(path)
    except NotATestbedDatabase as error:
        raise UsageError(str(error)) from None
    except StoreError as error:
        raise CommandFailed(str(error)) from None


def chosen_run(store: Store, run: int | None) -> int:
    """``run`` if the database has it, else the newest; UsageError when there is none."""
    if run is None:
        run = store.latest_run()
        if run is None:
            raise UsageError(f"{store.path} holds no runs yet")
    try:
        store.run(run)
    except KeyError as error:
        raise UsageError(str(error).strip("'\"")) from None
    return run
