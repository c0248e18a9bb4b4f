"""Id updates pipelined on one connection to the gateway controller (benchmarks and tests).

The controller answers pipelined ``set_id`` requests in the order they were
sent (:mod:`controller.gateways.control`); these helpers keep a fixed number
of them outstanding, as the coordinator does with its window of snapshots.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from controller.gateways.client import GatewayClient
from controller.gateways.updates import IdUpdate
from testbed.network import DataCenter


def pipelined(client: GatewayClient, ids: Iterable[int], in_flight: int) -> Iterator[IdUpdate]:
    """Ask for an update to each of ``ids`` in turn, ``in_flight`` outstanding at a time;
    yields the answers in order."""
    for snapshot_id in ids:
        if client.outstanding == in_flight:
            yield client.next_update()
        client.send_set_id(snapshot_id)
    while client.outstanding:
        yield client.next_update()


def pipelined_updates(dc: DataCenter, count: int, in_flight: int) -> list[IdUpdate]:
    """``count`` updates past the gateways' newest id, ``in_flight`` outstanding at a time,
    on a connection of their own."""
    with GatewayClient(dc.control_port, secret=dc.secret) as client:
        newest = max(client.ids().values())
        return list(pipelined(client, range(newest + 1, newest + count + 1), in_flight))
