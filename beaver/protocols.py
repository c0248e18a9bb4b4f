"""The snapshot protocols the testbed runs, behind one interface.

A :class:`Protocol` makes the in-group node state machines (its node
factory) and the coordinator; the simulator and the emulated hosts drive whatever it makes
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
from dataclasses import dataclass, replace
from typing import Any
from typing import Protocol as TypingProtocol

from beaver.baselines import MarkerNode, PollingNode
from beaver.coordinator import Coordinator
from beaver.ids import IdSpace
from beaver.node import PiggybackNode
from beaver.node_group import NodeGroup
from beaver.records import Receipt
from beaver.snapshot_status import Notify
from beaver.wire_floor import DEFAULT_PACKET_LIFETIME


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


class NodeFactory(TypingProtocol):
    """Makes the state machine of in-group node ``name`` (``peers``: the other in-group
    nodes; ``capture``: records the node's state)."""

    def __call__(self, name: str, capture: Callable[[], Any], *, peers: Iterable[str],
                 space: IdSpace | None) -> SnapshotNode: ...


@dataclass(frozen=True)
class Piggybacking:
    """Nodes that piggyback snapshot ids on their messages, of class ``node_class``.

    A variant (another ``node_class``) runs another implementation of the same
    rules, e.g. a classroom exercise's (``beaver simulate --node-class``).
    """

    node_class: PiggybackNodeFactory = PiggybackNode

    def __call__(self, name: str, capture: Callable[[], Any], *, peers: Iterable[str],
                 space: IdSpace | None) -> SnapshotNode:
        return self.node_class(name, capture, space)


def marker_node(name: str, capture: Callable[[], Any], *, peers: Iterable[str],
                space: IdSpace | None) -> SnapshotNode:
    """A Chandy-Lamport node: markers on every in-group channel."""
    return MarkerNode(name, peers, capture)


def polling_node(name: str, capture: Callable[[], Any], *, peers: Iterable[str],
                 space: IdSpace | None) -> SnapshotNode:
    """A node that records its state when told to, and nothing else."""
    return PollingNode(name, capture)


@dataclass(frozen=True)
class Protocol:
    """A snapshot protocol: how its nodes and its coordinator are made."""

    name: str
    summary: str
    make_node: NodeFactory
    """Its in-group node (:class:`Piggybacking`, :func:`marker_node`, :func:`polling_node`,
    or a new protocol's own)."""
    uses_gateways: bool
    """Whether gateways stamp ids into out-group traffic (otherwise it enters unmarked)."""
    notify: Notify
    counts_channels: bool
    """Whether completeness counts each channel's messages (otherwise every node having
    reported is completeness)."""

    @property
    def piggybacks_ids(self) -> bool:
        """Whether its nodes carry snapshot ids on their messages."""
        return isinstance(self.make_node, Piggybacking)

    def with_node_class(self, node_class: PiggybackNodeFactory) -> Protocol:
        """The same piggybacking protocol, with ``node_class`` as its in-group node."""
        if not self.piggybacks_ids:
            raise ValueError(f"a node class replaces the node of a piggybacking protocol "
                             f"({', '.join(piggybacking())}), not of {self.name}")
        return replace(self, make_node=Piggybacking(node_class))

    def node(
        self,
        name: str,
        capture: Callable[[], Any],
        *,
        peers: Iterable[str] = (),
        space: IdSpace | None = None,
    ) -> SnapshotNode:
        """The state machine of in-group node ``name`` (``peers``: the other in-group nodes)."""
        return self.make_node(name, capture, peers=peers, space=space)

    def node_group(
        self,
        names: Iterable[str],
        capture: Callable[[int, int, int], Any],
        *,
        capture_many: Callable[[Any, Any, Any], list[Any]] | None = None,
        space: IdSpace | None = None,
    ) -> NodeGroup | None:
        """Every in-group node as one :class:`NodeGroup` (``capture(i, first, last)``:
        records node ``names[i]``'s state for snapshots ``first..last``), when its nodes are
        the core's :class:`PiggybackNode`, whose rule the group applies; None for any other
        node (it runs one object per node)."""
        make_node = self.make_node
        if not (isinstance(make_node, Piggybacking) and make_node.node_class is PiggybackNode):
            return None
        return NodeGroup(tuple(names), capture, space, capture_many=capture_many)

    def coordinator(
        self,
        nodes: Iterable[str],
        *,
        gateways: Iterable[str] = (),
        tau_min: float = math.inf,
        space: IdSpace | None = None,
        update_timeout: float = math.inf,
        packet_lifetime: float = DEFAULT_PACKET_LIFETIME,
        broadcast: bool = False,
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
            broadcast=broadcast,
        )


PROTOCOLS: dict[str, Protocol] = {
    protocol.name: protocol
    for protocol in (
        Protocol(
            name="beaver", make_node=Piggybacking(), uses_gateways=True,
            notify=Notify.ALL, counts_channels=True,
            summary="gateways stamp snapshot ids into inbound traffic; valid if t1 - t0 < tau_min",
        ),
        Protocol(
            name="lai-yang", make_node=Piggybacking(), uses_gateways=False,
            notify=Notify.ALL, counts_channels=True,
            summary="snapshot ids piggybacked on in-group messages only; no gateways",
        ),
        Protocol(
            name="chandy-lamport", make_node=marker_node, uses_gateways=False,
            notify=Notify.INITIATOR, counts_channels=False,
            summary="markers on every in-group channel; FIFO channels",
        ),
        Protocol(
            name="polling", make_node=polling_node, uses_gateways=False,
            notify=Notify.ALL, counts_channels=False,
            summary="every node records its state when asked; no coordination",
        ),
    )
}
"""Every protocol, by name: one entry each (``docs/extending.md``)."""


def piggybacking() -> list[str]:
    """The protocols whose nodes piggyback ids (a ``--node-class`` can replace them)."""
    return [name for name, p in PROTOCOLS.items() if p.piggybacks_ids]


def protocol(name: str) -> Protocol:
    """The protocol called ``name``; a ValueError lists the known ones."""
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise ValueError(
            f"unknown protocol {name!r}; choose one of {', '.join(PROTOCOLS)}"
        ) from None
