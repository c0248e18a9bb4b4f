"""The wire-level check of stamping: the ids that reached the backends against the gateways'.

:class:`Capture` sniffs (scapy, in the root namespace) on the fabric ports
that face the backends: every UDP datagram to the service port whose source
is outside the in-group, i.e. every datagram that crossed a gateway. It
keeps each one's time (converted to ``time.monotonic()``, the clock of the
gateway app's timings) and wire code (the TOS byte and the TTL's two lowest
bits: :func:`beaver.ids.ipv4_code`).

:func:`mismatches` judges them against the gateway app's timings (the
stored ``gateway_timings``: when each gateway's update to id k was sent and
acknowledged). A gateway may stamp k from the moment its update to k was
sent until the acknowledgement of a later update: the flow-mod lands
somewhere between sending and the barrier reply. A datagram captured at t
was stamped up to ``slack`` seconds earlier (its way from the gateway to
the backend), so its wire code must be that of an id some gateway may
have stamped at some moment of [t - slack, t] (the capture cannot tell
which gateway carried it). Anything else is a mismatch.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from beaver.ids import IdSpace, ipv4_code
from topologies.addressing import INGROUP_NET

SLACK = 0.05
"""Seconds a datagram may take from its gateway to the backend's port."""


@dataclass(frozen=True)
class Captured:
    """One datagram seen at a backend's port: when (monotonic), its wire code, from where."""

    at: float
    code: int
    source: str
    port: str


@dataclass(frozen=True)
class Update:
    """One gateway's update to ``snapshot_id``: sent and acknowledged (None: failed)."""

    gateway: str
    snapshot_id: int
    sent_at: float | None
    acked_at: float | None


def stamping_periods(updates: Iterable[Update]) -> dict[str, list[tuple[int, float, float]]]:
    """Per gateway, (id, from, until): when it may have stamped each id (id 0 from the start)."""
    by_gateway: dict[str, list[Update]] = {}
    for update in updates:
        by_gateway.setdefault(update.gateway, []).append(update)
    periods: dict[str, list[tuple[int, float, float]]] = {}
    for gateway, mine in by_gateway.items():
        mine.sort(key=lambda u: u.snapshot_id)
        acked = [(u.snapshot_id, u.acked_at) for u in mine if u.acked_at is not None]
        periods[gateway] = [(0, float("-inf"), _superseded(acked, 0))] + [
            (u.snapshot_id, u.sent_at, _superseded(acked, u.snapshot_id))
            for u in mine if u.sent_at is not None]
    return periods


def _superseded(acked: list[tuple[int, float]], k: int) -> float:
    """When a gateway surely stamped a later id than ``k``: the first ack of one."""
    return min((at for j, at in acked if j > k), default=float("inf"))


def mismatches(packets: Iterable[Captured], updates: Iterable[Update], space: IdSpace,
               slack: float = SLACK) -> list[Captured]:
    """The captured datagrams whose wire code no gateway may have stamped when they crossed it."""
    periods = stamping_periods(updates)
    wrong = []
    for packet in packets:
        allowed = {space.to_wire(k) for spans in periods.values()
                   for k, begin, end in spans if begin <= packet.at and end >= packet.at - slack}
        if packet.code not in allowed:
            wrong.append(packet)
    return wrong


def stored_updates(snapshots: Iterable[Any]) -> list[Update]:
    """The gateway updates of stored snapshots (the store's ``FinishedSnapshot``)."""
    return [Update(g.gateway, s.snapshot_id, g.sent_at, g.acked_at)
            for s in snapshots for g in s.gateways]


class Capture:
    """Sniff on ``ports`` (root-namespace interfaces facing backends) while running."""

    def __init__(self, ports: Iterable[str], service_port: int):
        from scapy.all import AsyncSniffer

        self.packets: list[Captured] = []
        self._offset = time.monotonic() - time.time()
        ingroup = f"{INGROUP_NET.network_address}/{INGROUP_NET.prefixlen}"
        self._sniffer = AsyncSniffer(
            iface=list(ports), store=False, prn=self._keep,
            filter=f"udp and dst port {service_port} and not src net {ingroup}")

    def _keep(self, packet: Any) -> None:
        from scapy.all import IP

        if IP in packet:
            self.packets.append(Captured(float(packet.time) + self._offset,
                                         ipv4_code(packet[IP].tos, packet[IP].ttl), packet[IP].src,
                                         str(packet.sniffed_on)))

    def __enter__(self) -> Capture:
        self._sniffer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._sniffer.stop()

    def report(self, updates: Iterable[Update], space: IdSpace) -> Mapping[str, Any]:
        """Packets captured and those whose wire code does not match (the first few in detail)."""
        wrong = mismatches(self.packets, updates, space)
        return {"packets": len(self.packets), "mismatches": len(wrong),
                "first_mismatches": [{"at": p.at, "code": p.code, "source": p.source,
                                      "port": p.port} for p in wrong[:5]]}
