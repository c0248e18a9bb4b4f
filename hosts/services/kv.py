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
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from hosts.services import Address, Send

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
