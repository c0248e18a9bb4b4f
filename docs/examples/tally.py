"""A tally: every node sends ``add`` datagrams to its peers and counts what it sent and got.

The smallest service with an invariant, written as docs/extending.md
describes: the runtime class (``capture``, ``restore``, ``deliver``,
``next_work``, ``work``) and its :class:`~hosts.services.kind.ServiceKind`,
in one module, registered with one line in :mod:`hosts.services.registry`.

A consistent snapshot with exact channel state holds every ``add`` exactly
once: counted by its receiver, or in flight towards it. So the adds received
plus the adds in flight equal the adds sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hosts.services import Address, Send
from hosts.services.kind import Channel, NodeSetup, Option, ServiceKind, States, positive


class Tally:
    """One node: sends one ``add`` every ``1 / rate`` seconds to the next peer that is up."""

    def __init__(self, name: str, peers: tuple[str, ...], rate: float, start: float):
        self.name = name
        self.peers = tuple(sorted(set(peers) - {name}))
        self.period = 1 / rate if rate > 0 else None
        self.sent = self.received = 0
        self._next = start + self.period if self.period else None

    def capture(self) -> dict[str, int]:
        return {"sent": self.sent, "received": self.received}

    def restore(self, state: Any) -> None:
        self.sent, self.received = state["sent"], state["received"]

    def deliver(self, message: dict[str, Any], sender: str | None, source: Address,
                now: float) -> list[Send]:
        if message["kind"] == "add" and sender is not None:
            self.received += 1
        return []

    def next_work(self) -> float | None:
        return self._next

    def work(self, now: float, reachable: frozenset[str]) -> list[Send]:
        if self._next is None or self.period is None or now < self._next:
            return []
        self._next += self.period
        up = [peer for peer in self.peers if peer in reachable]
        if not up:
            return []
        self.sent += 1
        return [Send(up[self.sent % len(up)], {"kind": "add"})]


def adds_in_flight(in_flight: Channel) -> int:
    return sum(isinstance(m.message, dict) and m.message.get("kind") == "add"
               for m in in_flight)


class TallyService(ServiceKind):
    """The tally as ``beaver run --service tally`` runs it."""

    name = "tally"
    title = "tally"
    options = (Option("--tally-rate", 50.0, "tally: adds per second per host (default 50)",
                      positive, "must be a positive number"),)
    workload = "tally_rate"
    invariant_name = "tally invariant"

    def build(self, setup: NodeSetup) -> Tally:
        return Tally(setup.name, setup.peers, setup.rate, setup.start)

    def invariant(self, states: States, in_flight: Channel,
                  parameters: Mapping[str, Any]) -> list[str]:
        sent = sum(state["sent"] for state in states.values())
        received = sum(state["received"] for state in states.values())
        moving = adds_in_flight(in_flight)
        if received + moving == sent:
            return []
        return [f"{received} adds received + {moving} in flight, but {sent} sent"]

    def view(self, states: States, in_flight: Channel,
             parameters: Mapping[str, Any]) -> dict[str, Any]:
        return {"nodes": dict(states), "in_flight": adds_in_flight(in_flight),
                "violations": self.invariant(states, in_flight, parameters)}

    def node_line(self, view: dict[str, Any] | None, node: str, state: Any) -> str:
        return f"{node}: sent {state['sent']}, received {state['received']}"
