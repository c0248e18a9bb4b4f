"""The space-time diagram of a stored snapshot, for ``beaver show ID --diagram`` and
``beaver plot diagram`` (drawn by :mod:`analysis.diagram`)."""

from __future__ import annotations

from pathlib import Path

from cli.errors import UsageError
from controller.coordinator.store import Store


def diagram(store: Store, run: int, snapshot_id: int, path: Path) -> Path:
    """Draw snapshot ``snapshot_id`` of ``run`` to ``path``; UsageError if it cannot be."""
    from analysis.diagram import draw_stored

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return draw_stored(store, run, snapshot_id, path)
    except KeyError as error:
        raise UsageError(str(error).strip("'\"")) from None
    except LookupError as error:
        raise UsageError(f"{error} (runs store them since this version)") from None
    except OSError as error:
        raise UsageError(f"cannot write {path}: {error.strerror}") from None
