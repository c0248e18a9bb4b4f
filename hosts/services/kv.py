"""A key-value store behind a VIP, used by external clients over UDP.

Requests are ``{"kind": "get"|"put", "rid", "key"[, "value"]}``; every
request gets one ``{"kind": "reply", "rid", "ok"[, "value"]}`` sent back to
the requester's address. The backend sends replies from its DIP; the network
rewrites their source to the VIP on the way out (direct server return), so
clients see the VIP answer.

Writes are replicated to the other backends asynchronously: each backend
collects the keys written since its last flush and sends them to every peer
as a ``replicate`` datagram, ``rate`` times a second (0: never); peers not
known to be up yet miss those writes. Replication
is last-writer-wins by arrival. The state is the data plus the writes not
replicated yet (they are part of what a snapshot must capture).

:class:`KeyValueService` registers the store (:mod:`hosts.services.registry`):
external clients load it through the VIP; they are open loop, so a run has no
external causal chain to measure and tau_min is assumed to be the WAN delay.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from hosts.services import Address, Send
from hosts.services.kind import (
    AGENT_RATE_PROBLEM,
    Channel,
    NodeSetup,
    Option,
    ServiceKind,
    States,
    agent_rate,
    mismatched,
    non_negative,
)

log = logging.getLogger(__name__)

BATCH_KEYS = 256
"""Most keys in one replication datagram (small values keep it far below 64 KiB)."""


class KeyValueStore:
    """One backend of the replicated key-value store."""

    def __init__(self, name: str, *, peers: Sequence[str], rate: float, start: float):
        self.name = name
        self.peers = tuple(sorted(set(peers) - {name}))
        self.period = 1 / rate if rate > 0 else None
        self.data: dict[str, Any] = {}
        self.unreplicated: dict[str, Any] = {}
        self.ignored = 0
        """Datagrams that were not valid requests or replication batches."""
        self.ignored_by: dict[str, int] = {}
        """``ignored`` by reason (one: ``not_request``)."""
        self._next = start + self.period if self.period is not None else None

    def capture(self) -> dict[str, Any]:
        return {"data": dict(self.data), "unreplicated": dict(self.unreplicated)}

    def restore(self, state: Any) -> None:
        self.data = dict(state["data"])
        self.unreplicated = dict(state["unreplicated"])

    def deliver(
        self, message: dict[str, Any], sender: str | None, source: Address, now: float
    ) -> list[Send]:
        kind, key = message["kind"], message.get("key")
        if kind == "replicate" and sender is not None and isinstance(message.get("writes"), dict):
            self.data.update(message["writes"])
            return []
        if kind not in ("get", "put") or not isinstance(key, str) or "rid" not in message:
            self.ignored += 1
            self.ignored_by["not_request"] = self.ignored_by.get("not_request", 0) + 1
            log.warning("kv %s ignored a datagram that is not a request: %s", self.name, message)
            return []
        reply: dict[str, Any] = {"kind": "reply", "rid": message["rid"], "ok": True}
        if kind == "put":
            self.data[key] = self.unreplicated[key] = message.get("value")
        else:
            reply["value"] = self.data.get(key)
        return [Send(sender if sender is not None else source, reply)]

    def next_work(self) -> float | None:
        return self._next

    def work(self, now: float, reachable: frozenset[str]) -> list[Send]:
        if self._next is None or self.period is None or now < self._next:
            return []
        while self._next <= now:
            self._next += self.period
        peers = [peer for peer in self.peers if peer in reachable]
        if not self.unreplicated or not peers:
            return []
        keys, self.unreplicated = list(self.unreplicated.items()), {}
        batches = [dict(keys[i:i + BATCH_KEYS]) for i in range(0, len(keys), BATCH_KEYS)]
        return [Send(peer, {"kind": "replicate", "writes": batch})
                for batch in batches for peer in peers]


KEYS_SHOWN = 5
"""Keys of each backend ``beaver show ID`` prints."""


class KeyValueService(ServiceKind):
    """The replicated key-value store, loaded by external clients."""

    name = "kv"
    title = "key-value store"
    options = (
        Option("--client-rate", 50.0,
               "kv: requests per second of each external client (default 50)",
               agent_rate, AGENT_RATE_PROBLEM),
        Option("--replication-rate", 20.0,
               "kv: replication flushes per second per host (default 20)",
               non_negative, "must be >= 0"),
    )
    workload = "replication_rate"
    clients = "client_rate"
    assumed_tau = "the key-value clients are open loop, so there is no external chain to measure"

    def build(self, setup: NodeSetup) -> KeyValueStore:
        return KeyValueStore(setup.name, peers=setup.peers, rate=setup.rate, start=setup.start)

    def view(self, states: States, in_flight: Channel,
             parameters: Mapping[str, Any]) -> dict[str, Any]:
        """Each backend's state in a snapshot, with its counts."""
        return {
            "nodes": {
                node: {"keys": len(state["data"]),
                       "unreplicated_keys": len(state["unreplicated"]),
                       "data": state["data"], "unreplicated": state["unreplicated"]}
                for node, state in sorted(states.items())
            },
            "in_flight_replications": sum(
                isinstance(m.message, dict) and m.message.get("kind") == "replicate"
                for m in in_flight),
        }

    def node_line(self, view: dict[str, Any] | None, node: str, state: Any) -> str:
        """``node: N keys (M not replicated yet): k1=v1, ...`` with the first few keys."""
        assert view is not None
        backend = view["nodes"][node]
        shown = ", ".join(f"{key}={json.dumps(backend['data'][key])}"
                          for key in sorted(backend["data"])[:KEYS_SHOWN])
        more = ", ..." if backend["keys"] > KEYS_SHOWN else ""
        return (f"{node}: {backend['keys']} keys ({backend['unreplicated_keys']} not "
                f"replicated yet)" + (f": {shown}{more}" if shown else ""))

    def restore_report(self, states: States, in_flight: Channel, expected: States,
                       restored: States, parameters: Mapping[str, Any]) -> dict[str, Any]:
        """Every backend's restored state against the stored one with its in-flight batches."""
        wrong = mismatched(expected, restored)
        return {
            "ok": not wrong,
            "nodes": {node: {"keys": len(state["data"]),
                             "unreplicated_keys": len(state["unreplicated"])}
                      for node, state in sorted(restored.items())},
            "stored_keys": {node: len(state["data"]) for node, state in states.items()},
            "in_flight_applied": len(in_flight),
            "mismatched_nodes": wrong,
        }

    def restore_text(self, report: Mapping[str, Any]) -> str:
        lines = [f"restored snapshot {report['snapshot_id']} of run {report['run']} "
                 f"({self.title}) in {report['where']}"]
        lines += [f"  {node}: {entry['keys']} keys ({entry['unreplicated_keys']} not "
                  f"replicated yet); stored {report['stored_keys'].get(node, 0)} keys"
                  for node, entry in report["nodes"].items()]
        lines.append(f"  checked: each node's data and unreplicated writes equal the stored "
                     f"state with the {report['in_flight_applied']} in-flight messages applied")
        lines.append("  state " + ("matches at every node" if not report["mismatched_nodes"]
                                   else "differs at: " + ", ".join(report["mismatched_nodes"])))
        return "\n".join(lines)
