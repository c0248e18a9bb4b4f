"""The management network carries management traffic only: hosts reach the coordinator.

Beaver's correctness assumes out-group traffic enters the in-group only
through a gateway. The management network must not be a way around that:
a learning bridge there would carry a datagram an external host spoofs from
an in-group address straight to a backend's data address. So the
management bridge forwards nothing by learning. Its OpenFlow table holds
exactly these rules (:func:`management_flows`), everything else is dropped:

* ARP between each host and the root namespace only, with the sender's
  address checked against the port it comes in on (no host answers for
  another);
* per coordinator port opened (:func:`coordinator_flows`), TCP from each
  host's management address on its own port to the root namespace's
  address and that port, and the replies back: no host to host, no data
  addresses, no other root port.

Each host also gets strict reverse-path filtering (``rp_filter=1``, in its
own namespace only), so a packet with a data-network source arriving on its
management interface is dropped by the kernel as well.

``ports`` maps each node attached to the bridge (hosts and the root node) to
its OpenFlow port number there.
"""

from __future__ import annotations

from topologies.addressing import AddressPlan

DROP_PRIORITY = 0
ALLOW_PRIORITY = 100


def _attached(plan: AddressPlan) -> list[tuple[str, str]]:
    """(name, management address) of every host on the management network."""
    return [(h.name, h.mgmt_ip) for h in plan.hosts] + [
        (x.name, x.mgmt_ip) for x in plan.externals]


def management_flows(plan: AddressPlan, ports: dict[str, int]) -> list[str]:
    """The base table, in ``ovs-ofctl add-flow`` syntax: ARP with the root namespace only."""
    root, root_ip = ports[plan.root_name], plan.root_mgmt_ip
    flows = [f"priority={DROP_PRIORITY},actions=drop"]
    for name, address in _attached(plan):
        port = ports[name]
        flows += [
            f"priority={ALLOW_PRIORITY},in_port={port},arp,arp_spa={address},arp_tpa={root_ip},"
            f"actions=output:{root}",
            f"priority={ALLOW_PRIORITY},in_port={root},arp,arp_spa={root_ip},arp_tpa={address},"
            f"actions=output:{port}",
        ]
    return flows


def coordinator_flows(plan: AddressPlan, ports: dict[str, int], tcp_port: int) -> list[str]:
    """TCP between each host and the root namespace's ``tcp_port``, both ways."""
    root, root_ip = ports[plan.root_name], plan.root_mgmt_ip
    flows = []
    for name, address in _attached(plan):
        port = ports[name]
        flows += [
            f"priority={ALLOW_PRIORITY},in_port={port},tcp,nw_src={address},nw_dst={root_ip},"
            f"tp_dst={tcp_port},actions=output:{root}",
            f"priority={ALLOW_PRIORITY},in_port={root},tcp,nw_src={root_ip},nw_dst={address},"
            f"tp_src={tcp_port},actions=output:{port}",
        ]
    return flows
