"""The snapshot protocols the testbed runs, behind one interface.

A :class:`Protocol` makes the in-group node state machines and the
coordinator; the simulator and the emulated hosts drive whatever it makes
through the same calls (``send``, ``receive``, ``notify`` and, for marker
protocols, ``receive_marker``), so every comparison runs side by side.

=============== ======== ==================================================
protocol        gateways what it does
=============== ======== ==================================================
beaver          stamp    ids piggybacked in-group, gateways stamp inbound
                         traffic; valid only if t1 - t0 < tau_min
lai-yang        none     ids piggybacked in-group; out-group traffic unmarked
chandy-lamport  none     markers on every in-group channel (FIFO)
polling         none     every node records its state when asked
=============== ======== ==================================================
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from typing import Protocol as TypingProtocol

from beaver.baselines import MarkerNode, PollingNode
from beaver.coordinator import DEFAULT_PACKET_LIFETIME, Coordinator, Notify
from beaver.ids import IdSpace
from beaver.node import PiggybackNode
from beaver.records import Receipt


class SnapshotNode(TypingProtocol):
    """What every protocol's in-group node offers its runtime."""

    name: str
    current: int

    def send(self, peer: str | None, now: float) -> int: ...

    def receive(
        self, wire: int, sender: str | None, now: float, message: Any = None
    ) -> Receipt: ...

    def notify(self, snapshot_id: int, now: float) -> Receipt: ...


PiggybackNodeFactory = Callable[[str, Callable[[], Any], IdSpace | None], SnapshotNode]
"""Makes an id-piggybacking node from ``(name, capture, space)``, as :class:`PiggybackNode` does."""


@dataclass(frozen=True)
class Protocol:
    """A snapshot protocol: how its nodes and its coordinator are made."""

    name: str
    uses_gateways: bool
    """Whether gateways stamp ids into out-group traffic (otherwise it enters unmarked)."""
    uses_markers: bool
    """Whether it sends markers on in-group data channels."""
    piggybacks_ids: bool
    notify: Notify
    counts_channels: bool
    summary: str
    piggyback_node: PiggybackNodeFactory = PiggybackNode
    """The node of a piggybacking protocol; a variant (``dataclasses.replace``) can run
    another implementation of the same rules, e.g. a classroom exercise's."""

    def node(
        self,
        name: str,
        capture: Callable[[], Any],
        *,
        peers: Iterable[str] = (),
        space: IdSpace | None = None,
    ) -> SnapshotNode:
        """The state machine of in-group node ``name`` (``peers``: the other in-group nodes)."""
        if self.uses_markers:
            return MarkerNode(name, peers, capture)
        if self.piggybacks_ids:
            return self.piggyback_node(name, capture, space)
        return PollingNode(name, capture)

    def coordinator(
        self,
        nodes: Iterable[str],
        *,
        gateways: Iterable[str] = (),
        tau_min: float = math.inf,
        space: IdSpace | None = None,
        update_timeout: float = math.inf,
        packet_lifetime: float = DEFAULT_PACKET_LIFETIME,
    ) -> Coordinator:
        """The coordinator; gateways are ignored by protocols that do not use them."""
        return Coordinator(
            nodes,
            gateways=gateways if self.uses_gateways else (),
            tau_min=tau_min,
            space=space,
            notify=self.notify,
            counts_channels=self.counts_channels,
            update_timeout=update_timeout,
            packet_lifetime=packet_lifetime,
        )


PROTOCOLS: dict[str, Protocol] = {
    protocol.name: protocol
    for protocol in (
        Protocol(
            name="beaver", uses_gateways=True, uses_markers=False, piggybacks_ids=True,
            notify=Notify.ALL, counts_channels=True,
            summary="gateways stamp snapshot ids into inbound traffic; valid if t1 - t0 < tau_min",
        ),
        Protocol(
            name="lai-yang", uses_gateways=False, uses_markers=False, piggybacks_ids=True,
            notify=Notify.ALL, counts_channels=True,
            summary="snapshot ids piggybacked on in-group messages only; no gateways",
        ),
        Protocol(
            name="chandy-lamport", uses_gateways=False, uses_markers=True, piggybacks_ids=False,
            notify=Notify.INITIATOR, counts_channels=False,
            summary="markers on every in-group channel; FIFO channels",
        ),
        Protocol(
            name="polling", uses_gateways=False, uses_markers=False, piggybacks_ids=False,
            notify=Notify.ALL, counts_channels=False,
            summary="every node records its state when asked; no coordination",
        ),
    )
}


def protocol(name: str) -> Protocol:
    """The protocol called ``name``; a ValueError lists the known ones."""
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise ValueError(
            f"unknown protocol {name!r}; choose one of {', '.join(PROTOCOLS)}"
        ) from None
