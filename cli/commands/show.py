"""``beaver show``: the snapshots stored by ``beaver run``, or one of them in full.

Without an id it lists the snapshots of a run (the newest run unless
``--run``): validity, completeness, t1 - t0 and in-flight counts. With an id
it shows the snapshot: timings per gateway, each node's recorded state and
the in-flight messages. For the bank, ``--json`` also carries a ``bank``
object with everything needed to recheck the invariant independently: per
node the balances and the debited and credited transfer ids,
the in-flight transfers with amounts, the initial total, and the violations
:func:`hosts.services.bank.check_invariant` finds. For the key-value store
the text shows per node the number of keys, the writes not replicated yet
and the first few keys; ``--json`` carries a ``kv`` object with, per node,
those counts and the whole state (``data`` and ``unreplicated``).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from cli.errors import UsageError
from controller.coordinator.store import DEFAULT_DB, Store, StoreError, open_existing
from hosts.services.bank import check_invariant
from hosts.services.transfers import IdSet

NAME = "show"
HELP = "list stored snapshots, or show one: states, in-flight messages, validity, timings"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("id", nargs="?", type=int, help="snapshot id (default: list them)")
    parser.add_argument("--db", type=Path, default=DEFAULT_DB,
                        help=f"snapshot database (default {DEFAULT_DB})")
    parser.add_argument("--run", type=int, help="run id (default: the newest run)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    try:
        store = open_existing(args.db)
    except StoreError as error:
        print(f"beaver show: {error}", file=sys.stderr)
        return 1
    with store:
        run_id = chosen_run(store, args.run)
        if args.id is None:
            document = run_document(store, run_id)
            print(json.dumps(document) if args.json else format_run(document))
        else:
            document = snapshot_document(store, run_id, args.id)
            print(json.dumps(document) if args.json else format_snapshot(document))
    return 0


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
    service = run_row["parameters"].get("service")
    if service == "bank":
        document["bank"] = bank_view(snapshot, run_row["parameters"]["initial_total"])
    elif service == "kv":
        document["kv"] = kv_view(snapshot)
    return document


def kv_view(snapshot: Any) -> dict[str, Any]:
    """Each key-value backend's state in a snapshot, with its counts."""
    return {
        "nodes": {
            s.node: {"keys": len(s.state["data"]),
                     "unreplicated_keys": len(s.state["unreplicated"]),
                     "data": s.state["data"], "unreplicated": s.state["unreplicated"]}
            for s in sorted(snapshot.states, key=lambda s: s.node)
        },
        "in_flight_replications": sum(
            isinstance(m.message, dict) and m.message.get("kind") == "replicate"
            for m in snapshot.in_flight),
    }


def bank_view(snapshot: Any, initial_total: int) -> dict[str, Any]:
    """The bank's books in a snapshot, and the violations of its invariant."""
    states = {s.node: s.state for s in snapshot.states}
    transfers = [
        {"transfer": m.message.get("transfer"), "amount": m.message.get("amount"),
         "sender": m.sender, "receiver": m.receiver}
        for m in snapshot.in_flight
        if isinstance(m.message, dict) and m.message.get("kind") == "credit"
    ]
    return {
        "initial_total": initial_total,
        "nodes": {
            node: {
                "balances": state["balances"], "total": sum(state["balances"].values()),
                "debited": list(IdSet(state["debited"])),
                "credited": list(IdSet(state["credited"])),
            }
            for node, state in sorted(states.items())
        },
        "in_flight": transfers,
        "held": sum(sum(state["balances"].values()) for state in states.values()),
        "in_flight_total": sum(t["amount"] for t in transfers if type(t["amount"]) is int),
        "violations": check_invariant(states, snapshot.in_flight, initial_total),
    }


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


KV_KEYS_SHOWN = 5


def kv_line(node: str, backend: dict[str, Any]) -> str:
    """``node: N keys (M not replicated yet): k1=v1, ...`` with the first few keys in order."""
    shown = ", ".join(f"{key}={json.dumps(backend['data'][key])}"
                      for key in sorted(backend["data"])[:KV_KEYS_SHOWN])
    more = ", ..." if backend["keys"] > KV_KEYS_SHOWN else ""
    return (f"{node}: {backend['keys']} keys ({backend['unreplicated_keys']} not replicated "
            f"yet)" + (f": {shown}{more}" if shown else ""))


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
    bank, kv = document.get("bank"), document.get("kv")
    for node, entry in document["states"].items():
        if bank:
            books = bank["nodes"][node]
            lines.append(f"  {node}: balance {books['total']}, {len(books['debited'])} debited, "
                         f"{len(books['credited'])} credited")
        elif kv:
            lines.append("  " + kv_line(node, kv["nodes"][node]))
        else:
            lines.append(f"  {node}: {json.dumps(entry['state'])[:200]}")
    for m in document["in_flight"]:
        lines.append(f"  in flight {m['sender']} -> {m['receiver']}: "
                     f"{json.dumps(m['message'])[:200]}")
    if bank:
        lines.append(f"  bank: held {bank['held']} + in flight {bank['in_flight_total']} "
                     f"of initial {bank['initial_total']}: "
                     + ("invariant holds" if not bank["violations"]
                        else f"{len(bank['violations'])} violations"))
        lines += [f"    {violation}" for violation in bank["violations"]]
    return "\n".join(lines)
