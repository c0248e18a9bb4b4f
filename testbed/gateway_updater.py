"""The coordinator's way to the gateway app: its control client, as a GatewayUpdater.

The coordinator (:mod:`controller.coordinator`) and the gateway app
(:mod:`controller.gateways`) do not import each other; the testbed, which
starts both, joins them here.
"""

from __future__ import annotations

from beaver.records import GatewayTiming
from controller.gateways.client import GatewayClient


class ControllerGateways:
    """A :class:`controller.coordinator.gateway_phase.GatewayUpdater` over a controller.

    Its client's connection carries the pipelined updates only: no other
    request may share it while updates are outstanding.
    """

    def __init__(self, client: GatewayClient):
        self.client = client

    def gateways(self) -> list[str]:
        return self.client.gateways()

    def send_set_id(self, snapshot_id: int) -> None:
        self.client.send_set_id(snapshot_id)

    def next_update(self) -> list[GatewayTiming]:
        return list(self.client.next_update().gateways.values())
