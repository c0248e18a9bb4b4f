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
import os
import shlex
import subprocess
import sys
from collections.abc import Callable
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
PRIVATE_DATAPATH_TYPE = "dummy"
"""``datapath_type`` of bridges on a private daemon (``ovs-vswitchd --enable-dummy``): the
userspace datapath without kernel tap devices (see :mod:`testbed.switchd`)."""


class PrivateDaemonSwitch:
    """Mixin: an OVS switch whose bridge lives on a private switch daemon.

    The daemon is named by its run directory (``ovs_rundir``): the switch's shell
    exports ``OVS_RUNDIR``, so Mininet's own ``ovs-vsctl`` and ``ovs-ofctl``
    commands reach that daemon's database and the bridge's management socket;
    the batched start-up commands run with it too, one ``ovs-vsctl`` per daemon.
    The daemon's exit removes the bridge, so shutting down deletes nothing.
    """

    def __init__(self, name: str, ovs_rundir: str, port_type: str = "system",
                 **params: Any) -> None:
        super().__init__(name, **params)  # type: ignore[call-arg]
        self.ovs_rundir = ovs_rundir
        self.port_type = port_type
        """The Open vSwitch ``Interface`` type of its veth ends (``system``, ``afxdp``)."""
        self.cmd(f"export OVS_RUNDIR={shlex.quote(ovs_rundir)}")  # type: ignore[attr-defined]

    def intfOpts(self, intf: Any) -> str:  # noqa: N802 (Mininet's name)
        options = super().intfOpts(intf)  # type: ignore[misc]
        return options if self.port_type == "system" else f"{options} type={self.port_type}"

    def bridgeOpts(self) -> str:  # noqa: N802 (Mininet's name)
        options = super().bridgeOpts().replace(" datapath_type=netdev", "")  # type: ignore[misc]
        return f"{options} datapath_type={PRIVATE_DATAPATH_TYPE}"

    @classmethod
    def batchStartup(cls, switches: Any, run: Any = None) -> Any:  # noqa: N802
        by_daemon: dict[str, list[Any]] = {}
        for switch in switches:
            by_daemon.setdefault(switch.ovs_rundir, []).append(switch)
        for rundir, group in by_daemon.items():
            commands = " ".join(command.strip() for switch in group for command in switch.commands)
            if commands:
                done = subprocess.run(f"ovs-vsctl --timeout=30 {commands}", shell=True,
                                      capture_output=True, text=True,
                                      env={**os.environ, "OVS_RUNDIR": rundir})
                if done.returncode != 0:
                    raise RuntimeError(f"ovs-vsctl on {rundir}: {done.stderr.strip()}")
            for switch in group:
                switch.commands, switch.batch = [], False
        return switches

    @classmethod
    def batchShutdown(cls, switches: Any, run: Any = None) -> Any:  # noqa: N802
        return switches


class PrivateOVSSwitch(PrivateDaemonSwitch, OVSSwitch):  # type: ignore[misc]
    """A data-plane switch (OpenFlow, secure fail mode) on a private daemon."""


class PrivateOVSBridge(PrivateDaemonSwitch, OVSBridge):  # type: ignore[misc]
    """The management network's learning bridge on a private daemon."""


SwitchRundir = Callable[[str], str]
"""Switch name -> run directory of the private daemon that runs its bridge."""


class DataCenterTopo(Topo):
    """Leaf-spine fabric, gateways, border, internet switch and management network."""

    def build(self, **options: Any) -> None:  # type: ignore[override]
        self.plan = build_plan(DataCenterParams.from_options(**options))
        plan_into_topo(self, self.plan)


def plan_into_topo(topo: Topo, plan: AddressPlan, rundir_of: SwitchRundir | None = None,
                   port_type: str = "system") -> None:
    """Add the plan's switches, hosts and links to ``topo``.

    ``rundir_of``: bridges on private daemons (:mod:`testbed.switchd`); None: on the
    system's Open vSwitch (``mn --custom``). ``port_type``: the Open vSwitch interface
    type of the data-plane switches' ports on private daemons (the management bridge's
    stay ``system``).
    """
    for switch in plan.switches:
        if rundir_of is None:
            extra: dict[str, Any] = {"cls": OVSSwitch}
        else:
            extra = {"cls": PrivateOVSSwitch, "ovs_rundir": rundir_of(switch.name),
                     "port_type": port_type}
        topo.addSwitch(switch.name, dpid=f"{switch.dpid:016x}", **SWITCH_OPTIONS, **extra)
    if rundir_of is None:
        topo.addSwitch(plan.mgmt_switch, dpid=f"{0xF01:016x}", cls=OVSBridge, datapath="user")
    else:
        topo.addSwitch(plan.mgmt_switch, dpid=f"{0xF01:016x}", cls=PrivateOVSBridge,
                       datapath="user", ovs_rundir=rundir_of(plan.mgmt_switch))
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

    def build(self, plan: AddressPlan,  # type: ignore[override]
              rundir_of: SwitchRundir | None = None, port_type: str = "system") -> None:
        plan_into_topo(self, plan, rundir_of, port_type)


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
