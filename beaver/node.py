"""An in-group node of the id-piggybacking protocols (Beaver and Lai-Yang), on its own.

The rule (stamp every message with the node's current id; on a newer id,
record the state first, adopt the id, then deliver; an older id from an
in-group peer is in flight for the snapshots in between; count messages
so the coordinator can decide completeness) is :mod:`beaver.node_group`'s:
a :class:`PiggybackNode` is a group of one, counting per peer since its
peers are whoever it names.

Beaver and Lai-Yang differ only outside the node: under Beaver, out-group
traffic enters through gateways that stamp it; under Lai-Yang without
gateways it arrives unmarked and cannot trigger a snapshot.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from beaver.ids import IdSpace
from beaver.node_group import GroupMember, NodeGroup


class PiggybackNode(GroupMember):
    """The snapshot state machine of one in-group node; the runtime passes time in."""

    def __init__(self, name: str, capture: Callable[[], Any], space: IdSpace | None = None):
        super().__init__(NodeGroup((name,), lambda *_: capture(), space, per_peer=True), 0)
