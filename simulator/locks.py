"""A lock service in the simulated world: external clients whose transactions wait.

Every in-group node is a lock *site* holding a few locks (lock ``l`` lives
on node ``l % N``). The out-group processes are *clients* that run
transactions one after another: a transaction acquires two distinct locks
through the service's VIP (so through a gateway), one at a time and in
ascending order (which alone cannot deadlock), except for a share
``disorder`` of transactions that take them the other way round; then it
releases both and waits for both acknowledgements before the client starts
its next one. A site grants a free lock at once and queues requests for a
held one, granting the next in line when the holder releases it. Replies
go straight back to the client (direct server return), and the client's
next request follows the reply: every step after the first is an external
causal chain (site -> client -> gateway -> site), never shorter than the
world's tau_min. Two clients that each hold the lock the other waits for
wait forever: a deadlock, which nothing here breaks.

:class:`LockTable` is the site's state machine; the world runs one per
node, and a use case replays a node's recorded history through a fresh one
to read the lock table a snapshot holds (:mod:`usecases.deadlock`).
The world records every message's meaning (:attr:`LockWorld.meaning`) and
every deadlock as it forms (:attr:`LockWorld.deadlocks`); the protocol, the
gateways and the coordinator are the ordinary :class:`~simulator.world.World`.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from simulator.outgroup import RELAY_RECEIVES_AT
from simulator.world import World, WorldConfig

LOCKS_PER_NODE = 2


@dataclass(frozen=True)
class Acquire:
    """Client ``client``, in its transaction number ``transaction``, asks for ``lock``."""

    client: str
    transaction: int
    lock: int


@dataclass(frozen=True)
class Release:
    client: str
    transaction: int
    lock: int


@dataclass(frozen=True)
class Reply:
    """A site's answer: ``request`` granted (an Acquire) or acknowledged (a Release)."""

    request: Acquire | Release


@dataclass
class LockTable:
    """One site's locks: who holds each, and who waits for it, first come first served."""

    holder: dict[int, Acquire] = field(default_factory=dict)
    waiting: dict[int, deque[Acquire]] = field(default_factory=dict)

    def handle(self, request: Acquire | Release) -> list[Acquire | Release]:
        """Apply a request; returns what to answer (grants and acknowledgements), in order."""
        if isinstance(request, Acquire):
            if request.lock not in self.holder:
                self.holder[request.lock] = request
                return [request]
            self.waiting.setdefault(request.lock, deque()).append(request)
            return []
        held = self.holder.get(request.lock)
        if held is None or held.client != request.client:
            return [request]
        del self.holder[request.lock]
        answers: list[Acquire | Release] = [request]
        queue = self.waiting.get(request.lock)
        if queue:
            following = self.holder[request.lock] = queue.popleft()
            answers.append(following)
        return answers

    def waits(self) -> list[tuple[Acquire, Acquire]]:
        """Every (waiting request, request holding the lock it waits for)."""
        return [
            (request, self.holder[lock])
            for lock, queue in self.waiting.items()
            for request in queue
        ]


@dataclass(frozen=True)
class Deadlock:
    """A cycle of clients each waiting for a lock the next holds, closed at ``formed_at``."""

    waits: frozenset[Acquire]
    """The waiting requests on the cycle (client, transaction, lock): its identity."""
    formed_at: float

    @property
    def clients(self) -> frozenset[str]:
        return frozenset(request.client for request in self.waits)


def cycles(waits: list[tuple[Acquire, Acquire]]) -> list[frozenset[Acquire]]:
    """The cycles of a wait-for graph given as (waiting request, holding request) pairs.

    A client waits for at most one lock, so every client has at most one edge out.
    """
    edge = {waiter.client: (waiter, holder.client) for waiter, holder in waits}
    found, done = [], set()
    for start in edge:
        path, client = [], start
        while client in edge and client not in done and client not in path:
            path.append(client)
            client = edge[client][1]
        if client in path:
            found.append(frozenset(edge[c][0] for c in path[path.index(client):]))
        done.update(path)
    return found


class LockWorld(World):
    """The world of :class:`WorldConfig` whose traffic is the lock service's transactions."""

    def __init__(
        self,
        config: WorldConfig,
        locks_per_node: int = LOCKS_PER_NODE,
        disorder: float = 0.0,
        **kwargs,
    ):
        super().__init__(config, **kwargs)
        if not 0 <= disorder <= 1:
            raise ValueError(f"disorder must be in 0..1, got {disorder}")
        self.disorder = disorder
        if not self.relays:
            raise ValueError("the lock service needs out-group clients (relays > 0)")
        if locks_per_node * config.nodes < 2:
            raise ValueError("a transaction takes two distinct locks: need at least 2 locks")
        self.locks = locks_per_node * config.nodes
        self.tables = [LockTable() for _ in self.names]
        self.meaning: dict[int, Acquire | Release | Reply] = {}
        self.deadlocks: list[Deadlock] = []
        self._busy: dict[str, list[int]] = {}
        """Per client in a transaction, the locks it still has to acquire."""
        self._held: dict[str, list[Acquire]] = {}
        self._acks: dict[str, int] = {}
        self._transactions = dict.fromkeys(self.relays, 0)

    # -- clients ---------------------------------------------------------------------

    def _ingroup_message(self) -> None:
        """A client that is idle starts its next transaction (the world's traffic clock)."""
        client = self.relays[self._pick(len(self.relays))]
        if client in self._busy:
            return
        first = self._pick(self.locks)
        second = self._pick(self.locks - 1)
        second += second >= first
        if (first > second) != (self.rng.random() < self.disorder):
            first, second = second, first
        self._transactions[client] += 1
        self._busy[client] = [second]
        self._held[client] = []
        cross = self.engine.now + self.latencies.client_to_gateway.draw(self.rng)
        self._request(client, Acquire(client, self._transactions[client], first), cross)

    def _request(self, client: str, request: Acquire | Release, cross: float) -> None:
        message = self._new_message()
        self.meaning[message] = request
        self.log.send(client, message)
        site = request.lock % len(self.nodes)
        arrival = max(cross, self._relay_floor[client])
        self.engine.at(arrival, self._cross_gateway, self._pick_gateway(), site, message)

    def _answered(self, client: str, message: int, sent_at: float, back_at: float) -> None:
        """``client`` reads a reply; its next request crosses a gateway at ``back_at``."""
        self._relay_receive(client, message, sent_at)
        request = self.meaning[message].request
        if isinstance(request, Release):
            self._acks[client] -= 1
            if not self._acks[client]:
                del self._busy[client], self._acks[client], self._held[client]
            return
        self._held[client].append(request)
        remaining = self._busy[client]
        if remaining:
            lock = remaining.pop()
            self._request(client, Acquire(client, request.transaction, lock), back_at)
            return
        self._acks[client] = len(self._held[client])
        for held in self._held[client]:
            self._request(client, Release(client, held.transaction, held.lock), back_at)

    # -- sites -------------------------------------------------------------------------

    def _deliver_inbound(self, receiver: int, message: int, wire: int) -> None:
        super()._deliver_inbound(receiver, message, wire)
        sequence = self._sequences[receiver]
        request = self.meaning.get(message)
        if request is None or not sequence or sequence[-1] != ~message:
            return
        for answered in self.tables[receiver].handle(request):
            self._reply(receiver, answered)
        if isinstance(request, Acquire):
            self._check_deadlock()

    def _reply(self, site: int, request: Acquire | Release) -> None:
        now = self.engine.now
        self.nodes[site].send(None, now)
        message = self._new_message()
        self.meaning[message] = Reply(request)
        self._sequences[site].append(message)
        self._sent[site] += 1
        chain = self.latencies.chain(self.config.tau_min, self.rng)
        self.engine.after(chain * RELAY_RECEIVES_AT, self._answered, request.client, message,
                          now, now + chain)

    def _check_deadlock(self) -> None:
        waits = [pair for table in self.tables for pair in table.waits()]
        known = {deadlock.waits for deadlock in self.deadlocks}
        for cycle in cycles(waits):
            if cycle not in known:
                self.deadlocks.append(Deadlock(cycle, self.engine.now))
