"""The address plan of the emulated data center: the one source of names and addresses.

Everything else in the testbed (the Mininet topology, the os-ken controller,
the host agents, the snapshot coordinator) reads an :class:`AddressPlan`
instead of inventing addresses. A plan is built from
:class:`DataCenterParams` by :func:`build_plan`, checked before anything is
created, and travels between processes as JSON (:meth:`AddressPlan.to_json`,
:meth:`AddressPlan.from_json`).

The model:

* In-group hosts (the backends, DIPs) hang off leaf switches of a leaf-spine
  fabric, ``10.1.<leaf>.<n>``. Each backs one service.
* Each service has a virtual IP (VIP) ``10.100.0.<n>`` with a virtual MAC;
  traffic to a VIP enters through the gateways (software load balancers),
  which map the VIP to one backend's DIP.
* Out-group hosts (external clients and relays) live on an "internet"
  switch behind a border switch, ``10.200.0.<n>``.
* Every host and the root namespace (where the controller and the snapshot
  coordinator run) also sit on an out-of-band management network
  (``mgmt_net``, the root namespace takes its first address). Agent <->
  coordinator traffic uses it; it never crosses the data-plane switches.
* Hosts use static ARP for every data-plane address (hosts and VIPs), so
  nothing floods.

Names carry a short ``prefix`` so that two networks can exist side by side
on one machine (bridge and interface names are global in the root
namespace). Switch ports are fixed by the plan, so the controller computes
forwarding from it without discovery.
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

INGROUP_NET = ipaddress.IPv4Network("10.1.0.0/16")
VIP_NET = ipaddress.IPv4Network("10.100.0.0/16")
EXTERNAL_NET = ipaddress.IPv4Network("10.200.0.0/16")
DATA_PREFIX_LEN = 8
"""Hosts see one flat data subnet (10.0.0.0/8): the switches route, static ARP resolves."""

ROLES = ("spine", "leaf", "gateway", "border", "internet")
EXTERNAL_ROLES = ("client", "relay")

LIMITS = {
    "spines": (1, 4),
    "leaves": (1, 8),
    "hosts_per_leaf": (1, 8),
    "gateways": (1, 8),
    "externals": (1, 16),
    "relays": (0, 16),
    "services": (1, 8),
}
"""Inclusive bounds of each size parameter (they keep port and interface names short)."""


@dataclass(frozen=True)
class DataCenterParams:
    """The shape of the emulated data center; :meth:`validate` rejects bad values."""

    spines: int = 2
    leaves: int = 2
    hosts_per_leaf: int = 2
    gateways: int = 2
    externals: int = 4
    relays: int = 1
    """How many of the externals are relays (the last ones); the rest are clients."""
    services: int = 1
    prefix: str = "dc"
    mgmt_net: str = "172.30.0.0/24"

    def validate(self) -> None:
        """Raise one ValueError naming every problem, before anything is created."""
        problems = []
        for name, (low, high) in LIMITS.items():
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                problems.append(f"{name}={value!r} must be an integer in {low}..{high}")
        if not problems:
            if self.relays > self.externals:
                problems.append(f"relays={self.relays} exceeds externals={self.externals}")
            if self.services > self.leaves * self.hosts_per_leaf:
                problems.append(
                    f"services={self.services} exceeds the {self.leaves * self.hosts_per_leaf}"
                    " in-group hosts (each service needs a backend)"
                )
        if not isinstance(self.prefix, str) or not re.fullmatch(r"[a-z][a-z0-9]{0,3}", self.prefix):
            problems.append(f"prefix={self.prefix!r} must be 1-4 lowercase letters/digits")
        try:
            mgmt = ipaddress.IPv4Network(self.mgmt_net)
        except ValueError as error:
            problems.append(f"mgmt_net={self.mgmt_net!r} is not an IPv4 network ({error})")
        else:
            needed = 1 + self.leaves * self.hosts_per_leaf + self.externals if not problems else 0
            if mgmt.num_addresses - 2 < needed:
                problems.append(f"mgmt_net={self.mgmt_net} has fewer than {needed} addresses")
            for data_net in (INGROUP_NET, VIP_NET, EXTERNAL_NET):
                if mgmt.overlaps(data_net):
                    problems.append(f"mgmt_net={self.mgmt_net} overlaps data network {data_net}")
        if problems:
            raise ValueError("invalid data center parameters: " + "; ".join(problems))

    @classmethod
    def from_options(cls, **options: Any) -> DataCenterParams:
        """Parameters from ``name=value`` options (e.g. Mininet's ``--topo dc,gateways=4``)."""
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(options) - known)
        if unknown:
            raise ValueError(
                f"invalid data center parameters: unknown {', '.join(unknown)}"
                f" (known: {', '.join(sorted(known))})"
            )
        typed: dict[str, Any] = {}
        for name, value in options.items():
            if name in LIMITS and isinstance(value, str):
                try:
                    value = int(value)
                except ValueError:
                    raise ValueError(
                        f"invalid data center parameters: {name}={value!r} is not an integer"
                    ) from None
            typed[name] = value
        return cls(**typed)


@dataclass(frozen=True)
class InGroupHost:
    """A backend: its data address (DIP), where it is attached, which service it backs."""

    name: str
    dip: str
    mac: str
    leaf: str
    port: int
    mgmt_ip: str
    service: str


@dataclass(frozen=True)
class ExternalHost:
    """An out-group host on the internet switch: a client or a relay."""

    name: str
    ip: str
    mac: str
    port: int
    mgmt_ip: str
    role: str


@dataclass(frozen=True)
class Service:
    """A virtual IP and the in-group hosts behind it."""

    name: str
    vip: str
    mac: str
    backends: tuple[str, ...]


@dataclass(frozen=True)
class Switch:
    """A data-plane OpenFlow switch; ``role`` is one of :data:`ROLES`."""

    name: str
    dpid: int
    role: str


@dataclass(frozen=True)
class Link:
    """A switch-to-switch link with the port number at each end."""

    a: str
    a_port: int
    b: str
    b_port: int


@dataclass(frozen=True)
class AddressPlan:
    """Every name, address, MAC, port and datapath id of one data center."""

    prefix: str
    hosts: tuple[InGroupHost, ...]
    externals: tuple[ExternalHost, ...]
    services: tuple[Service, ...]
    switches: tuple[Switch, ...]
    links: tuple[Link, ...]
    mgmt_net: str
    mgmt_switch: str
    root_name: str
    root_mgmt_ip: str
    """The management address of the root namespace (controller, coordinator)."""
    ingroup_net: str = str(INGROUP_NET)
    vip_net: str = str(VIP_NET)
    external_net: str = str(EXTERNAL_NET)
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def gateways(self) -> tuple[Switch, ...]:
        return tuple(s for s in self.switches if s.role == "gateway")

    def switches_with(self, role: str) -> tuple[Switch, ...]:
        return tuple(s for s in self.switches if s.role == role)

    def switch(self, name: str) -> Switch:
        return _by_name(self.switches, name, "switch")

    def host(self, name: str) -> InGroupHost:
        return _by_name(self.hosts, name, "in-group host")

    def external(self, name: str) -> ExternalHost:
        return _by_name(self.externals, name, "external host")

    def service(self, name: str) -> Service:
        return _by_name(self.services, name, "service")

    def service_of_vip(self, vip: str) -> Service:
        for service in self.services:
            if service.vip == vip:
                return service
        raise KeyError(f"no service has VIP {vip}")

    def host_by_dip(self, dip: str) -> InGroupHost:
        for host in self.hosts:
            if host.dip == dip:
                return host
        raise KeyError(f"no in-group host has DIP {dip}")

    @property
    def mgmt_prefix_len(self) -> int:
        return ipaddress.IPv4Network(self.mgmt_net).prefixlen

    def port_between(self, switch: str, neighbour: str) -> int:
        """The port of ``switch`` that leads to the switch ``neighbour``."""
        for link in self.links:
            if (link.a, link.b) == (switch, neighbour):
                return link.a_port
            if (link.b, link.a) == (switch, neighbour):
                return link.b_port
        raise KeyError(f"no link between {switch} and {neighbour}")

    def arp_table(self) -> dict[str, str]:
        """IP -> MAC of every data-plane address a host may send to (hosts and VIPs)."""
        table = {h.dip: h.mac for h in self.hosts}
        table.update({x.ip: x.mac for x in self.externals})
        table.update({s.vip: s.mac for s in self.services})
        return table

    def to_json(self) -> str:
        document = asdict(self)
        document["gateways"] = [asdict(g) for g in self.gateways]
        return json.dumps(document, indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> AddressPlan:
        """The plan of :meth:`to_json` output; unknown roles raise ``ValueError``."""
        document = json.loads(text)
        document.pop("gateways", None)
        roles = {s["role"] for s in document["switches"]} | {
            x["role"] for x in document["externals"]}
        unknown = roles - set(ROLES) - set(EXTERNAL_ROLES)
        if unknown:
            raise ValueError(f"address plan has unknown roles: {sorted(unknown)}")
        return cls(
            prefix=document["prefix"],
            hosts=tuple(InGroupHost(**h) for h in document["hosts"]),
            externals=tuple(ExternalHost(**x) for x in document["externals"]),
            services=tuple(
                Service(**{**s, "backends": tuple(s["backends"])}) for s in document["services"]
            ),
            switches=tuple(Switch(**s) for s in document["switches"]),
            links=tuple(Link(**link) for link in document["links"]),
            mgmt_net=document["mgmt_net"],
            mgmt_switch=document["mgmt_switch"],
            root_name=document["root_name"],
            root_mgmt_ip=document["root_mgmt_ip"],
            ingroup_net=document["ingroup_net"],
            vip_net=document["vip_net"],
            external_net=document["external_net"],
            params=document.get("params", {}),
        )


def _by_name(items: tuple[Any, ...], name: str, kind: str) -> Any:
    for item in items:
        if item.name == name:
            return item
    raise KeyError(f"no {kind} named {name!r}")


def _mac(kind: int, high: int, low: int) -> str:
    return f"02:00:00:{kind:02x}:{high:02x}:{low:02x}"


def build_plan(params: DataCenterParams) -> AddressPlan:
    """The address plan of ``params`` (validated first: invalid -> ValueError)."""
    params.validate()
    p = params.prefix
    spines = [Switch(f"{p}sp{i}", 0x100 + i, "spine") for i in range(1, params.spines + 1)]
    leaves = [Switch(f"{p}lf{i}", 0x200 + i, "leaf") for i in range(1, params.leaves + 1)]
    gateways = [Switch(f"{p}gw{i}", 0x300 + i, "gateway") for i in range(1, params.gateways + 1)]
    border = Switch(f"{p}bd", 0x401, "border")
    internet = Switch(f"{p}in", 0x501, "internet")

    links: list[Link] = []
    next_port: dict[str, int] = {}

    def connect(a: Switch, b: Switch) -> None:
        a_port = next_port.get(a.name, 1)
        b_port = next_port.get(b.name, 1)
        next_port[a.name], next_port[b.name] = a_port + 1, b_port + 1
        links.append(Link(a.name, a_port, b.name, b_port))

    # Border first: its port 1 faces the internet switch, then gateways, then spines.
    connect(border, internet)
    for gateway in gateways:
        connect(border, gateway)
    for spine in spines:
        connect(spine, border)
        for leaf in leaves:
            connect(spine, leaf)
        for gateway in gateways:
            connect(spine, gateway)

    mgmt = ipaddress.IPv4Network(params.mgmt_net)
    mgmt_addresses = iter(mgmt.hosts())
    root_mgmt_ip = str(next(mgmt_addresses))

    hosts: list[InGroupHost] = []
    number = 0
    for leaf_index, leaf in enumerate(leaves, start=1):
        for slot in range(1, params.hosts_per_leaf + 1):
            number += 1
            port = next_port.get(leaf.name, 1)
            next_port[leaf.name] = port + 1
            hosts.append(
                InGroupHost(
                    name=f"{p}h{number}",
                    dip=str(INGROUP_NET.network_address + (leaf_index << 8) + slot),
                    mac=_mac(1, leaf_index, slot),
                    leaf=leaf.name,
                    port=port,
                    mgmt_ip=str(next(mgmt_addresses)),
                    service=f"svc{(number - 1) % params.services + 1}",
                )
            )
    externals: list[ExternalHost] = []
    first_relay = params.externals - params.relays + 1
    for index in range(1, params.externals + 1):
        port = next_port.get(internet.name, 1)
        next_port[internet.name] = port + 1
        externals.append(
            ExternalHost(
                name=f"{p}x{index}",
                ip=str(EXTERNAL_NET.network_address + index),
                mac=_mac(2, 0, index),
                port=port,
                mgmt_ip=str(next(mgmt_addresses)),
                role="relay" if index >= first_relay else "client",
            )
        )
    services = tuple(
        Service(
            name=f"svc{index}",
            vip=str(VIP_NET.network_address + index),
            mac=_mac(3, 0, index),
            backends=tuple(h.name for h in hosts if h.service == f"svc{index}"),
        )
        for index in range(1, params.services + 1)
    )
    return AddressPlan(
        prefix=p,
        hosts=tuple(hosts),
        externals=tuple(externals),
        services=services,
        switches=tuple(spines + leaves + gateways + [border, internet]),
        links=tuple(links),
        mgmt_net=str(mgmt),
        mgmt_switch=f"{p}mg",
        root_name=f"{p}root",
        root_mgmt_ip=root_mgmt_ip,
        params=asdict(params),
    )
