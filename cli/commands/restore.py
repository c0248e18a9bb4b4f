"""``beaver restore ID``: put a service back to a stored snapshot, and check the result.

A snapshot is restored by giving every node its recorded state and then
re-delivering the snapshot's in-flight messages to their receivers (the
management ``restore`` message with its ``in_flight`` list; the agent hands
them to the service as if they had just arrived). The bank that results
holds all the money of the snapshot: the balances plus what was in flight.
The key-value store that results holds each backend's data and unreplicated
writes, with the in-flight replication batches applied.

Restoring the network a run used is not possible (``beaver run`` tears it
down when it ends), so by default the command starts a fresh emulated data
center of the same shape for the purpose, with the service's workload off
(no transfers; no replication flushes and no clients) and the polling
protocol, restores every agent, takes one snapshot of the restored service
and checks it: every node holds exactly the state the restore should
produce (computed locally with the same service code) and, for the bank,
the bank invariant holds. That verification snapshot is stored as a new run whose
parameters name the restored snapshot. Stored node names are mapped in
order onto the fresh network's hosts; accounts and transfer ids keep their
names.

``--offline`` does the same restore in this process, without a network
(no root needed): the same service code restores each state and receives
the in-flight messages, and the result is checked the same way; it opens
the database read-only and writes nothing.

Without ``--run`` the snapshot is taken from the newest ``beaver run`` (never
from a restore's own verification run). A file that is not a testbed
database is one line, exit 2, and is left as it was.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path
from typing import Any

from cli.bounds import record_id
from cli.errors import UsageError
from cli.stores import chosen_run, open_store
from controller.coordinator.store import (
    DEFAULT_DB,
    FinishedSnapshot,
    Store,
)
from hosts.services.kind import NodeSetup, ServiceKind
from hosts.services.registry import service_kind, titles
from testbed.network import machine_problem

NAME = "restore"
HELP = (f"restore the {titles()} to a stored snapshot (in a fresh emulated "
        "network) and verify it")

NO_ADDRESS = ("0.0.0.0", 0)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("id", type=int, help="snapshot id")
    parser.add_argument("--db", type=Path, default=DEFAULT_DB,
                        help=f"snapshot database (default {DEFAULT_DB})")
    parser.add_argument("--run", type=record_id,
                        help="run id (default: the newest beaver run, not a restore check)")
    parser.add_argument("--offline", action="store_true",
                        help="restore in this process instead of a fresh emulated network")
    parser.add_argument("--json", action="store_true", help="end with one line of JSON")


def run(args: argparse.Namespace) -> int:
    store = open_store(args.db, read_only=args.offline)
    with store:
        run_id = chosen_run(store, args.run)
        run_row = store.run(run_id)
        service = run_row["parameters"].get("service")
        kind = service_kind(service) if isinstance(service, str) else None
        if kind is None:
            raise UsageError(f"run {run_id} ran no {titles()}; only those "
                             "can be restored")
        try:
            snapshot = store.snapshot(run_id, args.id)
        except KeyError as error:
            raise UsageError(str(error).strip("'\"")) from None
        expected = restored_states(snapshot, kind)
        if args.offline:
            restored, where = expected, "this process (--offline)"
        else:
            problem = machine_problem("run as root, or use --offline")
            if problem:
                print(f"beaver restore: {problem}", file=sys.stderr)
                return 1
            try:
                restored, where = restore_in_network(store, run_id, run_row, snapshot, kind)
            except (TimeoutError, RuntimeError) as error:
                print(f"beaver restore: {error}", file=sys.stderr)
                return 1
    report = kind.restore_report(snapshot.node_states(), snapshot.in_flight, expected,
                                 restored, run_row["parameters"])
    report |= {"service": service, "run": run_id, "snapshot_id": args.id, "where": where,
               "snapshot_valid": snapshot.valid, "snapshot_complete": snapshot.complete}
    print(kind.restore_text(report))
    if args.json:
        print(json.dumps(report))
    return 0 if report["ok"] else 1


def restored_states(snapshot: FinishedSnapshot, kind: ServiceKind) -> dict[str, Any]:
    """Each node's state after restoring ``snapshot`` (the agents' own service code)."""
    nodes = tuple(s.node for s in snapshot.states)
    states = {}
    for stored in snapshot.states:
        node = kind.build(NodeSetup(stored.node, peers=nodes, shards=nodes, relays=(), rate=0,
                                    start=0.0, rng=random.Random(stored.node)))
        node.restore(stored.state)
        for message in snapshot.in_flight:
            if message.receiver == stored.node and isinstance(message.message, dict):
                node.deliver(message.message, message.sender, NO_ADDRESS, 0.0)
        states[stored.node] = node.capture()
    return states


def restore_in_network(
    store: Store, run_id: int, run_row: dict[str, Any], snapshot: FinishedSnapshot,
    kind: ServiceKind,
) -> tuple[dict[str, Any], str]:
    """Restore into a fresh emulated service; its states, read back by one polling snapshot."""
    from testbed.emulation import Emulation, EmulationSettings

    parameters = run_row["parameters"]
    service = parameters["service"]
    settings = EmulationSettings(protocol="polling", service=service,
                                 gateways=parameters["gateways"],
                                 ingroup=len(snapshot.states), workload_rate=0.0,
                                 client_rate=0.0)
    check_parameters = {
        "restore_of": {"run": run_id, "snapshot_id": snapshot.snapshot_id},
        "gateways": parameters["gateways"], "ingroup": len(snapshot.states), "service": service,
    }
    check_parameters |= kind.parameters(len(snapshot.states))
    check_run = store.new_run("polling", check_parameters, None, "not used: polling")
    print("beaver restore: building a fresh data center ...", file=sys.stderr, flush=True)
    with store.discarding_if_empty(check_run), Emulation(settings, store, check_run) as emulation:
        assert emulation.service is not None
        old_nodes = [s.node for s in snapshot.states]
        rename = dict(zip(old_nodes, emulation.nodes, strict=True))
        states = {rename[s.node]: s.state for s in snapshot.states}
        channels: dict[str, list[dict[str, Any]]] = {}
        for m in snapshot.in_flight:
            channels.setdefault(rename[m.receiver], []).append(
                {"sender": rename[m.sender], "message": m.message})
        emulation.service.restore(snapshot.snapshot_id, states, channels, timeout=20)
        result = emulation.service.take(1, 1.0, timeout=20)
        if result.stalled:
            raise RuntimeError(f"the verification snapshot failed: {result.stalled}")
    check = store.snapshot(check_run, 1)
    back = {new: old for old, new in rename.items()}
    restored = {back[s.node]: s.state for s in check.states}
    return restored, f"a fresh emulated network (verification stored as run {check_run})"
