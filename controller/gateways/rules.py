"""OpenFlow rules as plain data, computed from the address plan.

A :class:`Rule` is what the os-ken app turns into one flow-mod: a table name
(see :mod:`controller.gateways.pipeline`), a priority, an os-ken style match
(``ipv4_dst`` may be ``(address, mask)``, a register ``(value, mask)``),
apply-actions and an optional goto. Fabric rules are proactive and fixed:
destination-based routing with no flooding (ARP is static in the hosts, so no
rule floods anything).

Paths:

* out-group -> VIP: internet -> border -> one gateway chosen per flow by a
  hash of the 5-tuple (:class:`HashSpread`) -> gateway (stamp, VIP -> DIP)
  -> spine -> leaf -> backend;
* backend -> out-group: leaf (source DIP -> VIP) -> spine -> border ->
  internet; replies never cross a gateway;
* in-group -> VIP: leaf -> spine -> border -> gateway -> ... like out-group
  traffic, but the gateway keeps the packet's wire code (its TOS byte);
* in-group -> in-group: leaf -> spine (chosen by destination leaf) -> leaf.

Loss on purpose (:func:`loss_rules`, ``beaver run --data-loss``): in-group
nodes draw each datagram's TTL entropy from :data:`beaver.ids.TTL_ENTROPY`
(5 bits of the TTL; its lowest 2 carry the snapshot id's top bits,
:func:`beaver.ids.ipv4_marks`); every leaf drops in-group -> in-group
datagrams whose entropy is one of the last ``round(share * 32)`` values (at
most 31: entropy 0, which datagrams that draw none carry, such as the
runtime's joins, is never dropped), one rule per such TTL (:func:`dropped_ttls`:
each entropy value with every combination of the id's bits, as OVS cannot mask
``nw_ttl``), so each datagram is lost with that share, in steps of 1/32,
independently of its flow and of the id it carries (OVS would pick a select
group's bucket once per flow).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from beaver.ids import IPV4_ID_BITS, TOS_BITS, TTL_ENTROPY, ipv4_marks, tos_fields
from controller.gateways.pipeline import Purpose, cookie
from topologies.addressing import AddressPlan, InGroupHost, Switch

ETH_TYPE_IP = 0x0800


@dataclass(frozen=True)
class Output:
    port: int


@dataclass(frozen=True)
class ToController:
    max_len: int = 0xFFFF


@dataclass(frozen=True)
class SetField:
    field: str
    value: Any


@dataclass(frozen=True)
class Move:
    """Copy ``bits`` bits of field ``source``, from bit ``source_offset`` up, into field
    ``destination`` from bit ``destination_offset`` up (Open vSwitch's ``move``,
    the Nicira ``NXAST_REG_MOVE`` action); the destination's other bits stay."""

    source: str
    destination: str
    bits: int
    source_offset: int = 0
    destination_offset: int = 0


@dataclass(frozen=True)
class HashSpread:
    """Output to one of ``ports``, chosen per flow by a hash of its 5-tuple.

    On OVS this is the ``bundle(symmetric_l3l4+udp, 0, hrw, ofport, ...)`` action
    (an OpenFlow select group would do the same in principle, but with OVS's
    default selection method it sent every UDP flow of a client to one
    gateway here; ``symmetric_l3l4+udp`` hashes the UDP ports too).
    """

    ports: tuple[int, ...]


Action = Output | ToController | SetField | Move | HashSpread


@dataclass(frozen=True)
class Rule:
    switch: str
    table: str
    priority: int
    match: tuple[tuple[str, Any], ...]
    actions: tuple[Action, ...] = ()
    goto: str | None = None
    cookie: int = 0
    idle_timeout: int = 0

    @property
    def match_dict(self) -> dict[str, Any]:
        return dict(self.match)


def match(**fields: Any) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted(fields.items()))


def tos_match(tos: int) -> dict[str, int]:
    """The OpenFlow 1.3 fields that hold TOS byte ``tos`` (the low 8 bits of a wire code):
    its DSCP and ECN bits (:func:`beaver.ids.tos_fields`), matched together."""
    dscp, ecn = tos_fields(tos)
    return {"ip_dscp": dscp, "ip_ecn": ecn}


def _net(cidr: str) -> tuple[str, str]:
    network = ipaddress.IPv4Network(cidr)
    return (str(network.network_address), str(network.netmask))


def leaf_net(plan: AddressPlan, leaf: str) -> tuple[str, str]:
    """The /24 of a leaf's hosts (from the DIPs of the plan)."""
    dip = next(h.dip for h in plan.hosts if h.leaf == leaf)
    return _net(str(ipaddress.IPv4Network(f"{dip}/24", strict=False)))


def spine_for_leaf(plan: AddressPlan, leaf: str) -> Switch:
    """The spine that carries traffic toward ``leaf`` (fixed, so paths are predictable)."""
    spines = plan.switches_with("spine")
    leaves = [s.name for s in plan.switches_with("leaf")]
    return spines[leaves.index(leaf) % len(spines)]


def _leaves_with_hosts(plan: AddressPlan) -> list[str]:
    return [s.name for s in plan.switches_with("leaf") if any(h.leaf == s.name for h in plan.hosts)]


def fabric_rules(plan: AddressPlan) -> list[Rule]:
    """The proactive rules of every non-gateway switch."""
    rules: list[Rule] = []
    fabric = cookie(Purpose.FABRIC)
    border = plan.switches_with("border")[0]
    internet = plan.switches_with("internet")[0]
    to_border = plan.port_between(internet.name, border.name)

    def route(switch: str, priority: int, actions: tuple[Action, ...], **fields: Any) -> None:
        rules.append(
            Rule(switch, "route", priority, match(eth_type=ETH_TYPE_IP, **fields), actions,
                 cookie=fabric)
        )

    for external in plan.externals:
        route(internet.name, 100, (Output(external.port),), ipv4_dst=external.ip)
        # Ingress filtering: an external host's packets go on only with its own source
        # address, so no one on the internet passes for an in-group node or a VIP.
        route(internet.name, 10, (Output(to_border),), in_port=external.port,
              ipv4_src=external.ip)

    route(border.name, 100, (Output(plan.port_between(border.name, internet.name)),),
          ipv4_dst=_net(plan.external_net))
    # No route from the border to a DIP: the out-group reaches the in-group only via a VIP.
    rules.append(border_spread_rule(plan))

    for spine in plan.switches_with("spine"):
        for leaf in _leaves_with_hosts(plan):
            route(spine.name, 100, (Output(plan.port_between(spine.name, leaf)),),
                  ipv4_dst=leaf_net(plan, leaf))
        up = (Output(plan.port_between(spine.name, border.name)),)
        route(spine.name, 50, up, ipv4_dst=_net(plan.external_net))
        route(spine.name, 50, up, ipv4_dst=_net(plan.vip_net))

    spines = plan.switches_with("spine")
    for index, leaf in enumerate(plan.switches_with("leaf")):
        own_uplink = Output(plan.port_between(leaf.name, spines[index % len(spines)].name))
        for host in (h for h in plan.hosts if h.leaf == leaf.name):
            route(leaf.name, 100, (Output(host.port),), ipv4_dst=host.dip)
            rules.append(_restore_vip(plan, host, own_uplink))
        for other in _leaves_with_hosts(plan):
            if other != leaf.name:
                via = spine_for_leaf(plan, other)
                route(leaf.name, 50, (Output(plan.port_between(leaf.name, via.name)),),
                      ipv4_dst=leaf_net(plan, other))
        route(leaf.name, 40, (own_uplink,), ipv4_dst=_net(plan.external_net))
        route(leaf.name, 40, (own_uplink,), ipv4_dst=_net(plan.vip_net))
    return rules


def dropped_entropies(share: float) -> range:
    """The TTL entropy values whose datagrams the loss rules drop: the last
    ``round(share * 32)``, at most 31 (entropy 0 is never dropped)."""
    if not 0 <= share < 1:
        raise ValueError(f"the share of datagrams lost must be in [0, 1), got {share}")
    values = len(TTL_ENTROPY)
    return TTL_ENTROPY[values - min(round(share * values), values - 1):]


def dropped_ttls(share: float) -> list[int]:
    """The TTLs the loss rules drop: every TTL whose entropy is dropped, whatever id bits
    it carries."""
    codes_by_ttl_bits = [bits << TOS_BITS for bits in range(1 << IPV4_ID_BITS - TOS_BITS)]
    return sorted(ipv4_marks(code, entropy)[1]
                  for entropy in dropped_entropies(share) for code in codes_by_ttl_bits)


def lost_share(share: float) -> float:
    """The share of in-group datagrams the loss rules for ``share`` really drop."""
    return len(dropped_entropies(share)) / len(TTL_ENTROPY)


def loss_rules(plan: AddressPlan, share: float) -> list[Rule]:
    """Rules that drop a ``share`` of in-group -> in-group datagrams, at every leaf."""
    ingroup = _net(plan.ingroup_net)
    return [
        Rule(leaf, "route", 200,
             match(eth_type=ETH_TYPE_IP, ipv4_src=ingroup, ipv4_dst=ingroup, nw_ttl=ttl),
             cookie=cookie(Purpose.LOSS, ttl))
        for leaf in _leaves_with_hosts(plan) for ttl in dropped_ttls(share)
    ]


def border_spread_rule(plan: AddressPlan, only: str | None = None) -> Rule:
    """VIP traffic at the border: spread over the gateways by flow (``only``: one gateway)."""
    border = plan.switches_with("border")[0].name
    gateways = [only] if only is not None else [g.name for g in plan.gateways]
    return Rule(
        border, "route", 50, match(eth_type=ETH_TYPE_IP, ipv4_dst=_net(plan.vip_net)),
        (HashSpread(tuple(plan.port_between(border, g) for g in gateways)),),
        cookie=cookie(Purpose.FABRIC, 1),
    )


def _restore_vip(plan: AddressPlan, host: InGroupHost, uplink: Output) -> Rule:
    """Direct server return: a backend's traffic to the out-group leaves with its VIP as source."""
    vip = next(s.vip for s in plan.services if s.name == host.service)
    return Rule(
        host.leaf,
        "route",
        90,
        match(eth_type=ETH_TYPE_IP, in_port=host.port, ipv4_src=host.dip,
              ipv4_dst=_net(plan.external_net)),
        (SetField("ipv4_src", vip), uplink),
        cookie=cookie(Purpose.RESTORE_VIP),
    )


def gateway_rules(plan: AddressPlan, gateway: str) -> list[Rule]:
    """The fixed rules of one gateway (everything except the stamp and observe rules)."""
    border = plan.switches_with("border")[0]
    from_border = plan.port_between(gateway, border.name)
    vips = _net(plan.vip_net)
    rules = [
        Rule(gateway, "classify", 100,
             match(eth_type=ETH_TYPE_IP, in_port=from_border, ipv4_src=_net(plan.ingroup_net),
                   ipv4_dst=vips),
             goto="observe", cookie=cookie(Purpose.CLASSIFY, 1)),
        Rule(gateway, "classify", 50,
             match(eth_type=ETH_TYPE_IP, in_port=from_border, ipv4_dst=vips),
             goto="stamp", cookie=cookie(Purpose.CLASSIFY, 2)),
        Rule(gateway, "observe", 0, match(), goto="balance", cookie=cookie(Purpose.PASS)),
        Rule(gateway, "balance", 0, match(), (ToController(),),
             cookie=cookie(Purpose.BALANCE_MISS)),
    ]
    for leaf in _leaves_with_hosts(plan):
        spine = spine_for_leaf(plan, leaf)
        rules.append(
            Rule(gateway, "forward", 10,
                 match(eth_type=ETH_TYPE_IP, ipv4_dst=leaf_net(plan, leaf)),
                 (Output(plan.port_between(gateway, spine.name)),),
                 cookie=cookie(Purpose.FORWARD))
        )
    return rules
