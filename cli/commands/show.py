"""``beaver show``: the snapshots stored by ``beaver run``, or one of them in full.

The database is opened read-only (nothing is written; a file that is not a
testbed database is one line, exit 2). Without an id it lists the snapshots
of a run (the newest ``beaver run``, not a restore's check, unless
``--run``): validity, completeness, t1 - t0 and in-flight counts. With an id
it shows the snapshot: timings per gateway, each node's recorded state and
the in-flight messages, as the run's service shows them
(:meth:`hosts.services.kind.ServiceKind.view`); ``--json`` carries that view
under the service's name. For the bank, a ``bank`` object with everything
needed to recheck the invariant independently: per node the balances and the
debited and credited transfer ids, the in-flight transfers with amounts, the
initial total, and the violations :func:`hosts.services.bank_invariant.check_invariant`
finds. For the key-value store the text shows per node the number of keys,
the writes not replicated yet and the first few keys; ``kv`` carries, per
node, those counts and the whole state (``data`` and ``unreplicated``).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from cli.bounds import record_id
from cli.diagrams import diagram
from cli.errors import UsageError
from cli.stores import chosen_run, open_store
from controller.coordinator.store import (
    DEFAULT_DB,
    Store,
)
from hosts.services.kind import ServiceKind
from hosts.services.registry import SERVICES, service_kind

NAME = "show"
HELP = "list stored snapshots, or show one: states, in-flight messages, validity, timings"
PLAIN = ServiceKind()
"""How a snapshot of a service with no view is shown: each node's state as JSON."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("id", nargs="?", type=record_id, help="snapshot id (default: list them)")
    parser.add_argument("--db", type=Path, default=DEFAULT_DB,
                        help=f"snapshot database (default {DEFAULT_DB})")
    parser.add_argument("--run", type=record_id,
                        help="run id (default: the newest beaver run, not a restore check)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--diagram", type=Path, metavar="FILE.png",
                        help="draw the snapshot's space-time diagram (cut, in-flight messages, "
                             "a chain breaking the cut) to FILE.png")


def run(args: argparse.Namespace) -> int:
    if not args.db.is_file():
        raise UsageError(f"no database at {args.db} (make one with: beaver run --db {args.db})")
    store = open_store(args.db, read_only=True)
    if args.diagram is not None and (args.id is None or args.diagram.suffix != ".png"):
        raise UsageError("--diagram takes a snapshot ID and a FILE.png to write")
    with store:
        run_id = chosen_run(store, args.run)
        if args.diagram is not None:
            print(diagram(store, run_id, args.id, args.diagram))
        elif args.id is None:
            document = run_document(store, run_id)
            print(json.dumps(document) if args.json else format_run(document))
        else:
            document = snapshot_document(store, run_id, args.id)
            print(json.dumps(document) if args.json else format_snapshot(document))
    return 0


def run_document(store: Store, run: int) -> dict[str, Any]:
    document = store.run(run)
    document["snapshots"] = store.snapshot_rows(run)
    document["rejections"] = store.rejections(run)
    document["node_counters"] = store.node_counters(run)
    verdicts = store.verdicts(run)
    for row in document["snapshots"]:
        row["oracle"] = verdicts.get(row["snapshot_id"])
    return document


def snapshot_document(store: Store, run: int, snapshot_id: int) -> dict[str, Any]:
    """One snapshot as plain data (what ``show ID --json`` prints)."""
    run_row = store.run(run)
    try:
        snapshot = store.snapshot(run, snapshot_id)
    except KeyError as error:
        raise UsageError(str(error).strip("'\"")) from None
    document: dict[str, Any] = {
        "run": run, "snapshot_id": snapshot_id, "protocol": run_row["protocol"],
        "valid": snapshot.valid, "complete": snapshot.complete,
        "t0": snapshot.t0, "t1": snapshot.t1, "update_us": snapshot.update_us,
        "completed_at": snapshot.completed_at,
        "tau_min_us": run_row["tau_min_us"], "tau_source": run_row["tau_source"],
        "gateways": [{"gateway": g.gateway, "sent_at": g.sent_at, "acked_at": g.acked_at,
                      "failed": g.failed} for g in snapshot.gateways],
        "states": {s.node: {"taken_at": s.taken_at, "state": s.state} for s in snapshot.states},
        "in_flight": [asdict(m) for m in snapshot.in_flight],
        "oracle": store.verdicts(run).get(snapshot_id),
    }
    kind = service_kind(run_row["parameters"].get("service", ""))
    view = kind.view(snapshot.node_states(), snapshot.in_flight, run_row["parameters"]) \
        if kind else None
    if kind and view is not None:
        document[kind.name] = view  # the service's view, under its name
    return document


def _us(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} us"


def format_run(document: dict[str, Any]) -> str:
    rows = document["snapshots"]
    service = document["parameters"].get("service")
    lines = [
        f"run {document['id']} ({document['started']}): {document['protocol']}"
        f"{', ' + service if service else ''}, "
        f"tau_min {_us(document['tau_min_us'])} ({document['tau_source']}), "
        f"{len(rows)} snapshots, {sum(r['valid'] for r in rows)} valid, "
        f"{sum(r['complete'] for r in rows)} complete",
        f"{'id':>5} {'valid':>5} {'complete':>8} {'t1-t0':>10} {'in flight':>9} "
        f"{'oracle':>12}",
    ]
    for r in rows:
        lines.append(f"{r['snapshot_id']:>5} {'yes' if r['valid'] else 'no':>5} "
                     f"{'yes' if r['complete'] else 'no':>8} {_us(r['update_us']):>10} "
                     f"{r['in_flight']:>9} {oracle_word(r['oracle']):>12}")
    if document["rejections"]:
        lines.append("rejected reports: " + ", ".join(
            f"{reason} {count}" for reason, count in document["rejections"].items()))
    return "\n".join(lines)


def oracle_word(verdict: dict[str, Any] | None) -> str:
    """The ground-truth oracle's verdict in a word (``-``: the run was not judged)."""
    if verdict is None:
        return "-"
    if not verdict["consistent"]:
        return "INCONSISTENT"
    return "consistent" if verdict["channel_exact"] else "inexact"


def format_snapshot(document: dict[str, Any]) -> str:
    lines = [
        f"snapshot {document['snapshot_id']} of run {document['run']} "
        f"({document['protocol']}): {'valid' if document['valid'] else 'INVALID'}, "
        f"{'complete' if document['complete'] else 'INCOMPLETE'}, "
        f"t1 - t0 = {_us(document['update_us'])} (tau_min {_us(document['tau_min_us'])})",
    ]
    for g in document["gateways"]:
        if g["failed"]:
            lines.append(f"  gateway {g['gateway']}: update FAILED")
        else:
            lines.append(f"  gateway {g['gateway']}: acked "
                         f"{_us((g['acked_at'] - document['t0']) * 1e6)} after t0")
    verdict = document["oracle"]
    if verdict is not None:
        lines.append(f"  oracle (ground truth): {oracle_word(verdict)}; channel state "
                     f"missing {verdict['channel_missing']}, extra {verdict['channel_extra']}")
    kind = next((k for k in SERVICES.values() if document.get(k.name) is not None), PLAIN)
    view = document.get(kind.name)
    lines += ["  " + kind.node_line(view, node, entry["state"])
              for node, entry in document["states"].items()]
    for m in document["in_flight"]:
        lines.append(f"  in flight {m['sender']} -> {m['receiver']}: "
                     f"{json.dumps(m['message'])[:200]}")
    lines += ["  " + line for line in kind.view_lines(view)]
    return "\n".join(lines)
