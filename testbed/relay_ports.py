"""The ports a relay answers each in-group node's transfers from, so the money stays spread.

A relay's answers to the bank go to the bank's VIP, where the gateways pick
a backend per flow by a Maglev hash of the 5-tuple
(:mod:`controller.gateways.maglev`). From one socket they are one flow,
which lands on one backend: every credit from the out-group goes to the
same node, the money gathers there, the other nodes run short of funds and
make fewer transfers, and the bank's throughput falls through a run with no
snapshot taken at all. :func:`answer_ports` gives the relay, for each
backend, the first port from :data:`FIRST_SOURCE_PORT` on whose flow the
gateways give to the *next* backend (in sorted order, the last one's to the
first): the relay answers each node's transfers from that node's port
(``--answer-ports``), so each node's money comes back to another node, each
node gets one node's, and every relayed chain runs between two different
nodes (with one backend, back to itself).
"""

from __future__ import annotations

import itertools

from controller.gateways.maglev import FlowKey, MaglevTable

UDP = 17
FIRST_SOURCE_PORT = 30000
"""Where the search for ports starts: below Linux's ephemeral range (32768 on)."""


def answer_ports(source_ip: str, vip: str, port: int, backends: list[str]) -> dict[str, int]:
    """For each of ``backends``, a port from which UDP datagrams of ``source_ip`` to
    ``vip:port`` reach the next backend (sorted by name, round the list)."""
    table = MaglevTable(backends)
    order = list(table.backends)
    reaching: dict[str, int] = {}
    for source_port in itertools.count(FIRST_SOURCE_PORT):
        if source_port > 65535:
            raise ValueError(f"no port reaches every backend of {vip}:{port}")
        reaching.setdefault(table.lookup(FlowKey(UDP, source_ip, vip, source_port, port)),
                            source_port)
        if len(reaching) == len(order):
            break
    return {node: reaching[order[(i + 1) % len(order)]] for i, node in enumerate(order)}
