"""Source ports for a relay, so that its datagrams to a VIP reach every backend equally.

A relay's answers to the bank go to the bank's VIP, where the gateways pick
a backend per flow by a Maglev hash of the 5-tuple
(:mod:`controller.gateways.maglev`). From one socket they are one flow,
which lands on one backend: every credit from the out-group goes to the
same node, the money gathers there, the other nodes run short of funds and
make fewer transfers, and the bank's throughput falls through a run with no
snapshot taken at all. :func:`spread_source_ports` picks, from
:data:`FIRST_SOURCE_PORT` on, ``per_backend`` ports for each backend whose
flow the gateways give to that backend, in an order that visits the backends
in turn. The relay answers each series of transfers it sees (one node's
transfers to it) from the next of those ports (``--source-ports``), so with
one port per backend the nodes' series come back to as many different
nodes, one series each, and the money stays spread.
"""

from __future__ import annotations

import itertools

from controller.gateways.maglev import FlowKey, MaglevTable

UDP = 17
FIRST_SOURCE_PORT = 30000
"""Where the search for ports starts: below Linux's ephemeral range (32768 on)."""
PER_BACKEND = 1
"""Ports (flows) per backend a relay answers from by default."""


def spread_source_ports(source_ip: str, vip: str, port: int, backends: list[str],
                        per_backend: int = PER_BACKEND) -> list[int]:
    """Ports from which UDP datagrams of ``source_ip`` to ``vip:port`` reach each of
    ``backends`` ``per_backend`` times, backends in turn (sorted by name)."""
    table = MaglevTable(backends)
    found: dict[str, list[int]] = {backend: [] for backend in table.backends}
    for source_port in itertools.count(FIRST_SOURCE_PORT):
        if source_port > 65535:
            raise ValueError(f"no {per_backend} ports for each backend of {vip}:{port}")
        owner = table.lookup(FlowKey(UDP, source_ip, vip, source_port, port))
        if len(found[owner]) < per_backend:
            found[owner].append(source_port)
            if all(len(ports) == per_backend for ports in found.values()):
                break
    return [ports[i] for i in range(per_backend) for ports in found.values()]
