"""The data center as a Mininet topology, built from the address plan.

Usable from Python (``DataCenterTopo(gateways=4)``) and from ``mn``; ``mn`` is
a system-Python script, so run it with the project's interpreter::

    sudo .venv/bin/python $(command -v mn) --custom topologies/datacenter.py \\
        --topo datacenter,gateways=2,hosts_per_leaf=3 \\
        --controller remote,ip=127.0.0.1,port=6653

with the controller started by hand beforehand (see ``controller/__main__.py``;
the plan file is ``python -m topologies.datacenter --write-plan plan.json``
with the same options). Every data-plane switch is a userspace OVS bridge
speaking OpenFlow 1.3 in secure fail mode (nothing forwards until the
controller installs rules); the management network is a plain learning
bridge that also reaches the root namespace through the node ``<prefix>root``.

Each host disables checksum offload on all its interfaces (the userspace
datapath would deliver bad checksums otherwise) and gets a permanent ARP
entry for every data-plane address, so nothing floods.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from mininet.node import Host, OVSBridge, OVSSwitch
from mininet.topo import Topo

from topologies.addressing import DATA_PREFIX_LEN, AddressPlan, DataCenterParams, build_plan


class DataCenterHost(Host):
    """A host with checksum offload off on every interface and static ARP entries."""

    def config(self, arp: dict[str, str] | None = None, **params: Any) -> dict[str, Any]:
        result = super().config(**params)
        for intf in self.intfList():
            if intf.name != "lo":
                self.cmd(f"ethtool -K {intf.name} tx off rx off")
        data_intf = self.defaultIntf()
        for ip, mac in (arp or {}).items():
            if ip != data_intf.IP():
                self.cmd(f"ip neigh replace {ip} lladdr {mac} dev {data_intf.name} nud permanent")
        return result


SWITCH_OPTIONS = {"datapath": "user", "protocols": "OpenFlow13", "failMode": "secure"}


class DataCenterTopo(Topo):
    """Leaf-spine fabric, gateways, border, internet switch and management network."""

    def build(self, **options: Any) -> None:  # type: ignore[override]
        self.plan = build_plan(DataCenterParams.from_options(**options))
        plan_into_topo(self, self.plan)


def plan_into_topo(topo: Topo, plan: AddressPlan) -> None:
    for switch in plan.switches:
        topo.addSwitch(switch.name, dpid=f"{switch.dpid:016x}", cls=OVSSwitch, **SWITCH_OPTIONS)
    topo.addSwitch(plan.mgmt_switch, dpid=f"{0xF01:016x}", cls=OVSBridge, datapath="user")
    for link in plan.links:
        topo.addLink(link.a, link.b, port1=link.a_port, port2=link.b_port)

    arp = plan.arp_table()
    mgmt_len = plan.mgmt_prefix_len
    for host in plan.hosts:
        topo.addHost(host.name, cls=DataCenterHost, ip=f"{host.dip}/{DATA_PREFIX_LEN}",
                     mac=host.mac, arp=arp)
        topo.addLink(host.name, host.leaf, port1=0, port2=host.port)
        topo.addLink(host.name, plan.mgmt_switch, port1=1,
                     params1={"ip": f"{host.mgmt_ip}/{mgmt_len}"})
    internet = plan.switches_with("internet")[0]
    for external in plan.externals:
        topo.addHost(external.name, cls=DataCenterHost, ip=f"{external.ip}/{DATA_PREFIX_LEN}",
                     mac=external.mac, arp=arp)
        topo.addLink(external.name, internet.name, port1=0, port2=external.port)
        topo.addLink(external.name, plan.mgmt_switch, port1=1,
                     params1={"ip": f"{external.mgmt_ip}/{mgmt_len}"})
    topo.addHost(plan.root_name, cls=DataCenterHost, inNamespace=False,
                 ip=f"{plan.root_mgmt_ip}/{mgmt_len}")
    topo.addLink(plan.root_name, plan.mgmt_switch, port1=0)


class PlannedTopo(Topo):
    """The topology of an existing plan (what :class:`testbed.network.DataCenter` builds)."""

    def build(self, plan: AddressPlan) -> None:  # type: ignore[override]
        plan_into_topo(self, plan)


topos = {"datacenter": DataCenterTopo}


def main(argv: list[str] | None = None) -> int:
    """Write the address plan of ``--option name=value`` parameters to a JSON file."""
    parser = argparse.ArgumentParser(prog="python -m topologies.datacenter",
                                     description=main.__doc__)
    parser.add_argument("--write-plan", required=True, metavar="FILE")
    parser.add_argument("options", nargs="*", metavar="NAME=VALUE",
                        help="data center parameters, e.g. gateways=4")
    args = parser.parse_args(argv)
    try:
        options = dict(option.split("=", 1) for option in args.options)
        plan = build_plan(DataCenterParams.from_options(**options))
    except ValueError as error:
        print(f"python -m topologies.datacenter: {error}", file=sys.stderr)
        return 2
    with open(args.write_plan, "w") as handle:
        handle.write(plan.to_json())
    return 0


if __name__ == "__main__":
    sys.exit(main())
