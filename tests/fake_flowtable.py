"""A software model of the fabric's flow tables: "where does this packet go?".

Tests and offline checks ask the rules the controller would install (plain
:class:`controller.gateways.rules.Rule` values) what happens to a packet, instead of
comparing flow strings. The model follows OpenFlow 1.3 semantics that the
rules use: per table the highest-priority matching rule wins, apply-actions
run in order (``set_field`` and ``move`` change the packet at once, so a copy
to the controller sees earlier rewrites), then goto; registers (``reg0``,
``reg1``, ...) are 0 when a packet enters a switch and stay there; a match
``(value, mask)`` on an integer field compares the masked bits; no matching
rule drops; output
to the input port drops; a per-flow hash spread picks one of its ports (the
caller says which). A packet that crosses more than ``max_hops`` switches is reported as
a loop.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from controller.gateways.pipeline import FABRIC_PIPELINE, GATEWAY_PIPELINE, Table
from controller.gateways.rules import HashSpread, Move, Output, Rule, SetField, ToController
from topologies.addressing import AddressPlan

Packet = dict[str, Any]
"""Header fields with os-ken match names: eth_type, ipv4_src, ipv4_dst, ip_dscp, ip_ecn, ..."""
Choice = Callable[[tuple[int, ...], Packet], int]
"""Which of a :class:`HashSpread`'s ports a packet takes (an index)."""


@dataclass
class Trace:
    """What happened to one packet: the switches it crossed and where it ended."""

    hops: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)
    """(switch, names of the tables the packet went through) per switch crossed."""
    delivered_to: str | None = None
    packet: Packet = field(default_factory=dict)
    to_controller: list[tuple[str, str, Packet]] = field(default_factory=list)
    """(switch, table, packet as sent) for each copy sent to the controller."""
    dropped_at: str | None = None
    loop: bool = False

    @property
    def switches(self) -> list[str]:
        return [switch for switch, _ in self.hops]


def is_register(name: str) -> bool:
    return name.startswith("reg") and name[3:].isdigit()


def field_matches(name: str, wanted: Any, packet: Packet) -> bool:
    value = packet.get(name, 0 if is_register(name) else None)
    if value is None:
        return False
    if isinstance(wanted, tuple) and isinstance(wanted[0], int):
        return value & wanted[1] == wanted[0] & wanted[1]
    if isinstance(wanted, tuple):
        network = ipaddress.IPv4Network(f"{wanted[0]}/{wanted[1]}")
        return ipaddress.IPv4Address(value) in network
    return value == wanted


class FlowTables:
    """The rules of every switch of a plan, evaluated in software."""

    def __init__(self, plan: AddressPlan, rules: Iterable[Rule]) -> None:
        self.plan = plan
        self.rules: dict[str, list[Rule]] = {}
        for rule in rules:
            self.rules.setdefault(rule.switch, []).append(rule)
        self.gateways = {g.name for g in plan.gateways}
        self.neighbours: dict[tuple[str, int], tuple[str, int]] = {}
        for link in plan.links:
            self.neighbours[(link.a, link.a_port)] = (link.b, link.b_port)
            self.neighbours[(link.b, link.b_port)] = (link.a, link.a_port)
        self.attached = {(h.leaf, h.port): h.name for h in plan.hosts}
        internet = plan.switches_with("internet")[0].name
        self.attached.update({(internet, x.port): x.name for x in plan.externals})

    def add(self, rule: Rule) -> None:
        """Install a rule as an OpenFlow add does: it replaces one with the same match."""
        same = (rule.table, rule.priority, rule.match)
        kept = [r for r in self.rules.get(rule.switch, [])
                if (r.table, r.priority, r.match) != same]
        self.rules[rule.switch] = [*kept, rule]

    def pipeline(self, switch: str) -> tuple[Table, ...]:
        return GATEWAY_PIPELINE if switch in self.gateways else FABRIC_PIPELINE

    def lookup(self, switch: str, table: str, packet: Packet) -> Rule | None:
        candidates = [
            r for r in self.rules.get(switch, ())
            if r.table == table and all(field_matches(k, v, packet) for k, v in r.match)
        ]
        return max(candidates, key=lambda r: r.priority, default=None)

    def send_from(self, host: str, packet: Packet,
                  bucket: Choice = lambda ports, packet: 0,
                  max_hops: int = 16) -> Trace:
        """Follow ``packet`` sent by ``host`` (an in-group or external host name)."""
        location = next(key for key, name in self.attached.items() if name == host)
        return self.trace(location[0], location[1], packet, bucket, max_hops)

    def trace(self, switch: str, in_port: int, packet: Packet,
              bucket: Choice, max_hops: int) -> Trace:
        trace = Trace(packet=dict(packet))
        current: tuple[str, int] | None = (switch, in_port)
        while current is not None:
            if len(trace.hops) >= max_hops:
                trace.loop = True
                return trace
            switch, in_port = current
            current = None
            trace.packet["in_port"] = in_port
            port, tables = self._through_switch(switch, trace, bucket)
            trace.hops.append((switch, tables))
            if port is None or port == in_port:
                trace.dropped_at = switch if not trace.to_controller else None
                break
            if (switch, port) in self.attached:
                trace.delivered_to = self.attached[(switch, port)]
                break
            current = self.neighbours[(switch, port)]
        trace.packet.pop("in_port", None)
        return trace

    def _through_switch(self, switch: str, trace: Trace,
                        bucket: Choice
                        ) -> tuple[int | None, tuple[str, ...]]:
        pipeline = self.pipeline(switch)
        table: str | None = pipeline[0].name
        visited: list[str] = []
        out_port = None
        while table is not None:
            visited.append(table)
            rule = self.lookup(switch, table, trace.packet)
            if rule is None:
                break
            for action in rule.actions:
                if isinstance(action, SetField):
                    trace.packet[action.field] = action.value
                elif isinstance(action, Move):
                    move(action, trace.packet)
                elif isinstance(action, ToController):
                    copy = {k: v for k, v in trace.packet.items() if k != "in_port"}
                    trace.to_controller.append((switch, table, copy))
                elif isinstance(action, Output):
                    out_port = action.port
                elif isinstance(action, HashSpread):
                    out_port = action.ports[bucket(action.ports, trace.packet) % len(action.ports)]
            table = rule.goto
        for name in [name for name in trace.packet if is_register(name)]:
            del trace.packet[name]
        return out_port, tuple(visited)


def move(action: Move, packet: Packet) -> None:
    """Copy the bits a :class:`Move` names within ``packet`` (absent fields read as 0)."""
    bits = (1 << action.bits) - 1
    value = packet.get(action.source, 0) >> action.source_offset & bits
    kept = packet.get(action.destination, 0) & ~(bits << action.destination_offset)
    packet[action.destination] = kept | value << action.destination_offset
