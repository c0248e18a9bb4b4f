"""Bot detection from snapshots (the paper's Table 3), with session tickets.

The service hands a *ticket* to a client in every reply, and a client's next
request shows the newest ticket it holds: that is how a session continues on
whichever backend the load balancer picks. In the simulated world the
relays are such chained clients (an in-group node's message to a relay is a
reply carrying a ticket; the relay's next request, through a gateway to
another node, presents the newest ticket it received), the open-loop
clients start fresh sessions (no ticket), and *bots* are open-loop clients
whose requests present forged tickets, never issued by any backend.

Each backend's state is its request log (see :mod:`usecases.history`).
The detector reads one snapshot: a client is a bot when some backend served
it a request whose ticket no backend in the snapshot issued to it. A ticket
is issued before, and causally before, it is presented, through the
client: an external causal chain. So in a causally consistent snapshot a
genuine ticket is always issued inside the cut and only bots are flagged;
in an inconsistent one (a presentation inside the cut whose issue is
outside it) an honest chained client is flagged too: a false positive.

Across a run a client counts as flagged when any snapshot the protocol
accepted flags it; against the true labels that gives true and false
positives and negatives per client, as the paper's table does.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from usecases.history import Observed, Traffic


@dataclass(frozen=True)
class Sessions:
    """The tickets of a run: who holds which, and what each request presents."""

    clients: tuple[str, ...]
    """Every out-group process that sends requests (chained clients and open-loop ones)."""
    bots: frozenset[str]
    presented: dict[int, int]
    """Request message id -> the ticket it presents (a message id; forged: negative)."""
    traffic: Traffic


def bots_among(clients: Iterable[str], count: int) -> frozenset[str]:
    """The first ``count`` open-loop clients are bots (a run's labels, the ground truth)."""
    clients = sorted(clients)
    if not 0 <= count <= len(clients):
        raise ValueError(f"bots must be in 0..{len(clients)}, got {count}")
    return frozenset(clients[:count])


def sessions(observed: Observed, bots: frozenset[str]) -> Sessions:
    """Replay the out-group processes' logs: which ticket each request presents."""
    world, log = observed.world, observed.run.log
    presented: dict[int, int] = {}
    for relay in world.relays:
        newest = None
        for event in log.events.get(relay, ()):
            if event < 0:
                newest = ~event
            elif newest is not None:
                presented[event] = newest
    for client in bots:
        for event in log.events.get(client, ()):
            if event >= 0:
                presented[event] = ~event
    return Sessions(
        clients=tuple(world.relays) + tuple(world.clients),
        bots=bots,
        presented=presented,
        traffic=Traffic.of(log),
    )


def flagged(observed: Observed, snapshots, tickets: Sessions) -> Iterator[tuple[object, set[str]]]:
    """Per snapshot (in id order), the clients it shows presenting a ticket that no backend
    in it issued them (:func:`suspects` on :func:`views`)."""
    pending: list[tuple[str, int]] = []
    """Shown pairs the rule flagged so far: a later cut holds more issues, never fewer,
    so only these can change their verdict."""
    seen = 0
    for snapshot, issued, shown in views(observed, snapshots, tickets):
        pending += shown[seen:]
        seen = len(shown)
        pending = [pair for pair in pending if suspects(issued, [pair])]
        yield snapshot, {client for client, _ in pending}


def suspects(issued: dict[int | str, str], shown: list[tuple[str, int | str]]) -> set[str]:
    """The detection rule, for one snapshot: the clients that showed a ticket no backend in
    it issued to them (``issued``: ticket -> client; ``shown``: (client, ticket) pairs)."""
    return {client for client, ticket in shown if issued.get(ticket) != client}


def views(observed: Observed, snapshots, tickets: Sessions
          ) -> Iterator[tuple[object, dict[int, str], list[tuple[str, int]]]]:
    """Per snapshot (in id order), what its backends recorded, plainly: the tickets issued
    inside the cut (ticket -> the client it went to) and the requests served inside it
    that showed a ticket, as (client, ticket). A detector needs nothing else (lab 4 writes
    one); the two objects grow from one snapshot to the next: read them before moving on."""
    sender, receiver = tickets.traffic.sender, tickets.traffic.receiver
    issued: dict[int, str] = {}
    shown: list[tuple[str, int]] = []
    for snapshot, fresh in observed.advancing(snapshots):
        for events in fresh.values():
            for event in events:
                if event >= 0:
                    if event in receiver:
                        issued[event] = receiver[event]
                elif (ticket := tickets.presented.get(~event)) is not None:
                    shown.append((sender[~event], ticket))
        yield snapshot, issued, shown


@dataclass(frozen=True)
class Detection:
    """A run's verdicts per client, against the true labels."""

    true_positives: int
    false_positives: int
    true_negatives: int
    false_negatives: int
    snapshots_used: int
    snapshots_with_false_positive: int


def detect(observed: Observed, bots: frozenset[str]) -> Detection:
    """Flag clients from every snapshot the protocol accepted; score against ``bots``."""
    tickets = sessions(observed, bots)
    used = observed.accepted()
    suspects: set[str] = set()
    wrong_snapshots = 0
    for _, found in flagged(observed, used, tickets):
        if found - bots:
            wrong_snapshots += 1
        suspects |= found
    clients = set(tickets.clients)
    return Detection(
        true_positives=len(suspects & bots),
        false_positives=len(suspects - bots),
        true_negatives=len(clients - suspects - bots),
        false_negatives=len(bots - suspects),
        snapshots_used=len(used),
        snapshots_with_false_positive=wrong_snapshots,
    )
