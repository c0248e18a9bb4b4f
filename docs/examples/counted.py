"""A protocol: Lai-Yang whose nodes also count the messages they record as in flight.

The smallest new protocol, written as docs/extending.md describes: a node
class and the :class:`~beaver.protocols.Protocol` that names it as its node
factory, registered with one entry in :data:`beaver.protocols.PROTOCOLS`.
It decides exactly as Lai-Yang does (same rules, so the same snapshots); the
count shows which node implementation ran.
"""

from __future__ import annotations

from typing import Any

from beaver.node import PiggybackNode
from beaver.protocols import Piggybacking, Protocol
from beaver.records import Receipt
from beaver.snapshot_status import Notify


class CountingNode(PiggybackNode):
    """The core's piggybacking node, counting the in-flight records it makes."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.recorded_in_flight = 0

    def receive(self, wire: int, sender: str | None, now: float, message: Any = None) -> Receipt:
        receipt = super().receive(wire, sender, now, message)
        self.recorded_in_flight += len(receipt.in_flight)
        return receipt


COUNTED = Protocol(
    name="lai-yang-counted", make_node=Piggybacking(CountingNode), uses_gateways=False,
    notify=Notify.ALL, counts_channels=True,
    summary="Lai-Yang, its nodes counting the messages they record in flight",
)
