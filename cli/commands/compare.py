"""``beaver compare RUN RUN``: two stored runs side by side, with ratios.

For each run: protocol, snapshots, accepted (valid and complete) and their
share, the oracle's inconsistent snapshots (among all, among accepted),
t1 - t0 p50 and p99, the snapshot start rate reached and the in-flight
messages recorded per snapshot; the last column is the second run's value
over the first's. A run is an id in ``--db``, or ``FILE:ID`` for a run in
another database. ``--json`` prints one object instead.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from cli.errors import UsageError
from cli.stores import chosen_run, open_store
from controller.coordinator.store import DEFAULT_DB

NAME = "compare"
HELP = "two stored runs side by side: accepted, inconsistent, t1 - t0, rates, ratios"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs=2, metavar="RUN", help="a run id, or FILE:ID")
    parser.add_argument("--db", type=Path, default=DEFAULT_DB,
                        help=f"database of runs given by id alone (default {DEFAULT_DB})")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    from analysis.runs import measures

    sides = []
    for text in args.runs:
        db, run_id = where(text, args.db)
        with open_store(db, read_only=True) as store:
            chosen_run(store, run_id)
        sides.append((f"{db}:{run_id}", measures(db, run_id)))
    if args.json:
        print(json.dumps({name: values for name, values in sides}))
    else:
        print(table(sides))
    return 0


def where(text: str, default_db: Path) -> tuple[Path, int]:
    """``ID`` -> (default db, ID); ``FILE:ID`` -> (FILE, ID)."""
    db, _, number = text.rpartition(":")
    try:
        run_id = int(number)
    except ValueError:
        raise UsageError(f"a run is an id or FILE:ID, got {text!r}") from None
    return (Path(db) if db else default_db), run_id


def table(sides: list[tuple[str, dict]]) -> str:
    (first_name, first), (second_name, second) = sides
    rows = [("", first_name, second_name, "second / first")]
    for key in first:
        a, b = first[key], second[key]
        ratio = (f"{b / a:.3g}" if isinstance(a, int | float) and isinstance(b, int | float)
                 and a else "")
        rows.append((key, _cell(a), _cell(b), ratio))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return "\n".join("  ".join(cell.rjust(width) if i else cell.ljust(width)
                               for i, (cell, width) in enumerate(zip(row, widths, strict=True)))
                     for row in rows)


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
