"""Mininet that writes down what it creates, as it creates it, in a run record.

:class:`RecordedMininet` is Mininet with each ``add*`` method followed by an
update of the :class:`~topologies.record.RunRecord`: every node's shell
(hosts, switches, controllers: ``node.pid``), every switch's bridge name,
and the root-namespace ends of every link with their ifindex (ends inside
a host's namespace disappear with it). :meth:`RecordedMininet.pin_bridges`,
called after ``start()``, adds the bridges' OVSDB ``_uuid`` (asked through each
switch's own ``ovs-vsctl``, so also of bridges on private switch daemons).
"""

from __future__ import annotations

import socket
from typing import Any

from mininet.net import Mininet

from topologies.record import RunRecord


class RecordedMininet(Mininet):  # type: ignore[misc]
    """Mininet keeping ``record`` up to date with its node shells, interfaces and bridges."""

    def __init__(self, *args: Any, record: RunRecord, **kwargs: Any) -> None:
        self.record = record
        super().__init__(*args, **kwargs)

    def addHost(self, name: str, *args: Any, **params: Any) -> Any:
        host = super().addHost(name, *args, **params)
        self.record.add_process(host.pid, f"shell of {name}")
        return host

    def addSwitch(self, name: str, *args: Any, **params: Any) -> Any:
        self.record.add_bridges([name])
        switch = super().addSwitch(name, *args, **params)
        self.record.add_process(switch.pid, f"shell of {name}")
        return switch

    def addController(self, *args: Any, **params: Any) -> Any:
        controller = super().addController(*args, **params)
        self.record.add_process(controller.pid, f"shell of {controller.name}")
        return controller

    def addLink(self, *args: Any, **params: Any) -> Any:
        link = super().addLink(*args, **params)
        self.record.add_interfaces({intf.name: socket.if_nametoindex(intf.name)
                                    for intf in (link.intf1, link.intf2)
                                    if not intf.node.inNamespace})
        return link

    def pin_bridges(self) -> None:
        """Write down the OVSDB ``_uuid`` of every switch's bridge (after ``start()``)."""
        uuids = {switch.name: switch.vsctl("--timeout=10", "get", "Bridge", switch.name,
                                           "_uuid").strip()
                 for switch in self.switches}
        self.record.pin_bridges({name: uuid for name, uuid in uuids.items() if uuid})
