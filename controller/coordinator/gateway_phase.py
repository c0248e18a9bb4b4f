"""The gateway phase of a snapshot: one update of every gateway, fed to the protocol core.

The coordinator knows the gateway app only through :class:`GatewayUpdater`:
the testbed passes one that drives the app's control interface
(:class:`testbed.gateway_updater.ControllerGateways`); tests pass fakes. An
update is one call that raises every gateway in parallel and returns each
gateway's :class:`~beaver.records.GatewayTiming`. The acknowledgements go to
the core in the order they came (the last one is t1), every gateway without
one fails; the timings are kept for the store.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from typing import Protocol

from beaver.coordinator import Coordinator
from beaver.records import Command, GatewayTiming

log = logging.getLogger("beaver.snapshots")

NO_ACK = "no acknowledgement"
"""The failure of a gateway the update reported nothing about."""


class GatewayUpdater(Protocol):
    """The gateway app as the coordinator sees it."""

    def gateways(self) -> list[str]:
        """The gateways' names."""
        ...

    def set_id(self, snapshot_id: int) -> Iterable[GatewayTiming]:
        """Raise every gateway to ``snapshot_id``; each gateway's part of the update."""
        ...


async def update_gateways(
    core: Coordinator, updater: GatewayUpdater, k: int
) -> tuple[list[Command], dict[str, GatewayTiming]]:
    """Update every gateway to snapshot ``k`` (off the event loop); the core's commands
    and each gateway's timing. An updater that raises fails every gateway."""
    try:
        reported = {t.gateway: t for t in await asyncio.to_thread(updater.set_id, k)}
        failure = NO_ACK
    except Exception as error:  # the gateway app is down or broke: every update failed
        log.warning("snapshot %d: gateway update failed: %s", k, error)
        reported, failure = {}, f"update failed: {error}"
    commands: list[Command] = []
    timings: dict[str, GatewayTiming] = {}
    acked = sorted((t.acked_at, t.gateway) for t in reported.values()
                   if not t.failed and t.acked_at is not None)
    for acked_at, gateway in acked:
        timings[gateway] = GatewayTiming(gateway, reported[gateway].sent_at, acked_at)
        commands += core.gateway_acked(gateway, k, acked_at)
    now = time.monotonic()
    for gateway in sorted(set(core.gateways) - set(timings)):
        timing = reported.get(gateway)
        timings[gateway] = GatewayTiming(
            gateway, timing.sent_at if timing else None, None,
            (timing.failure if timing else None) or failure)
        commands += core.gateway_failed(gateway, k, now)
    return commands, timings
