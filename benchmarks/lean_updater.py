"""Id updates with (almost) no controller: what the data plane alone allows user traffic.

The gateway controller's ack of an id update is, per gateway, the
``current`` rule's flow-mod and a barrier on the gateway's OpenFlow
connection, and once every barrier reply is back, one ``revalidator/purge``
per switch daemon over its unixctl socket. The controller spends 0.7-1.5 ms
of CPU per update doing it, for the request, its decisions and its threads
(docs/dataplane.md).
:class:`LeanUpdater` does the same sequence with as little else as it can,
on one thread: it opens its own OpenFlow 1.3 connection to each gateway's
bridge (the bridge's ``<bridge>.mgmt`` socket, which the switch daemon
serves as it serves ``ovs-ofctl``: a hello, then requests), and per update

* writes each gateway's pre-encoded bytes (the flow-mod of its ``current``
  rule for the id, made by the controller's own encoders,
  :class:`~controller.gateways.openflow.CurrentRuleMessages` and
  :class:`~controller.gateways.openflow.BarrierRequests`, then a barrier)
  with one ``sendall``,
* reads every barrier reply with one selector (framed as the controller's
  reader frames them, :func:`~controller.gateways.openflow.take_messages`),
* then calls ``revalidator/purge`` on each daemon of the gateways over one
  persistent JSON-RPC connection (:class:`~controller.gateways.datapath.Unixctl`,
  as the controller does).

So it sends the daemon the very messages the controller sends, in the same
order, and its ack promises what the controller's does: the barrier reply
says the flow-mod is in the tables, the purge after it that packets see
them. What it leaves out is everything a controller does besides
(the request and its answer, the decisions, the encoding while it is
measured, the hand-offs between threads): a run with it bounds what any
leaner controller could give the data plane
(``bench_gateways.py --updater lean``). The controller stays connected
(it installed the rules and still receives what the gateways send it) but
is not asked for updates.
"""

from __future__ import annotations

import selectors
import socket
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from os_ken.ofproto import ofproto_protocol, ofproto_v1_3

from controller.gateways.datapath import SYNC_MODES, Unixctl
from controller.gateways.decisions import GatewayController
from controller.gateways.openflow import (
    HEADER,
    BarrierRequests,
    CurrentRuleMessages,
    take_messages,
)
from controller.gateways.pipeline import GATEWAY_PIPELINE
from topologies.addressing import AddressPlan

if TYPE_CHECKING:
    from testbed.network import DataCenter

DATAPATH = ofproto_protocol.ProtocolDesc(ofproto_v1_3.OFP_VERSION)
"""What the controller's encoders need of a connection: its OpenFlow version."""
HELLO = HEADER.pack(ofproto_v1_3.OFP_VERSION, ofproto_v1_3.OFPT_HELLO, HEADER.size, 0)
UPDATERS = ("controller", "lean")
"""Who sends a benchmark's updates: the gateway controller, or :class:`LeanUpdater`."""
REPLY_TIMEOUT = 5.0
"""Seconds to wait for a gateway's answer before the update counts as failed."""


def chosen_updaters(value: str, in_flight: int, syncs: list[str]) -> list[str]:
    """The updaters a comma-separated ``value`` names; ValueError with one line saying why
    they cannot be measured (the lean loop sends one update at a time and purges)."""
    updaters = value.split(",")
    unknown = sorted(set(updaters) - set(UPDATERS))
    if unknown:
        raise ValueError(f"unknown --updater {', '.join(unknown)}; one of {', '.join(UPDATERS)}")
    if "lean" in updaters and in_flight > 1:
        raise ValueError("--updater lean sends one update at a time: use --in-flight 1")
    if "lean" in updaters and set(syncs) != {SYNC_MODES[0]}:
        raise ValueError(f"--updater lean syncs by {SYNC_MODES[0]} only: "
                         f"use --datapath-sync {SYNC_MODES[0]}")
    return updaters


class UpdateMessages:
    """Per id, the bytes each gateway gets: its ``current`` rule's flow-mod for the id and a
    barrier, encoded as the controller encodes them (its rules come from the controller's
    own :class:`~controller.gateways.decisions.GatewayController`)."""

    def __init__(self, plan: AddressPlan) -> None:
        self.decisions = GatewayController(plan)
        self.gateways = list(self.decisions.gateways)
        self._flow_mods = CurrentRuleMessages(GATEWAY_PIPELINE)
        self._barriers = BarrierRequests()

    def of(self, snapshot_id: int) -> list[bytes]:
        """Each gateway's bytes (in the order of :attr:`gateways`) raising it to
        ``snapshot_id``; ids must come in increasing order, as updates do."""
        messages = []
        for name in self.gateways:
            self.decisions.gateways[name].set_id(snapshot_id)
            rule = self.decisions.current_rule(name)
            flow_mod = self._flow_mods.encode(DATAPATH, rule, self._barriers.next_xid())
            messages.append(flow_mod + self._barriers.request(self._barriers.next_xid()))
        return messages


class LeanUpdater:
    """One thread's id updates straight to the gateways' switch daemons (see the module)."""

    def __init__(self, plan: AddressPlan, bridge_sockets: dict[str, Path],
                 control_sockets: Iterable[Path]) -> None:
        """``bridge_sockets``: gateway -> its bridge's ``.mgmt`` socket; ``control_sockets``:
        the unixctl socket of each daemon running gateways."""
        self.messages = UpdateMessages(plan)
        self.prepared: dict[int, list[bytes]] = {}
        self.encoded_in_loop = 0
        """Updates whose bytes were not prepared and were encoded when sent."""
        self.unixctls = [Unixctl(path) for path in dict.fromkeys(control_sockets)]
        self.selector = selectors.DefaultSelector()
        self.connections: list[socket.socket] = []
        self.buffers: dict[socket.socket, bytearray] = {}
        try:
            for name in self.messages.gateways:
                self._connect(name, bridge_sockets[name])
        except BaseException:
            self.close()
            raise

    @classmethod
    def of_data_center(cls, dc: DataCenter) -> LeanUpdater:
        """A lean loop to the gateways of running data center ``dc``."""
        if dc.daemons is None:
            raise RuntimeError("the data center is not running")
        daemons = dc.daemons
        return cls(dc.plan, {gateway.name: daemons.of_switch(gateway.name).path(
            f"{gateway.name}.mgmt") for gateway in dc.plan.gateways},
            daemons.control_sockets().values())

    def _connect(self, gateway: str, path: Path) -> None:
        connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.connections.append(connection)
        connection.settimeout(REPLY_TIMEOUT)
        connection.connect(str(path))
        connection.sendall(HELLO)
        buffer = self.buffers[connection] = bytearray()
        while not any(kind == ofproto_v1_3.OFPT_HELLO for kind, _, _ in take_messages(buffer)):
            chunk = connection.recv(65536)
            if not chunk:
                raise ConnectionError(f"gateway {gateway}: the bridge closed the connection")
            buffer += chunk
        self.selector.register(connection, selectors.EVENT_READ, gateway)

    def prepare(self, first_id: int, count: int) -> None:
        """Encode the bytes of updates to ``first_id`` .. ``first_id + count - 1`` now, so
        that sending them costs no encoding (any prepared before and not sent are dropped)."""
        self.prepared = {snapshot_id: self.messages.of(snapshot_id)
                         for snapshot_id in range(first_id, first_id + count)}

    def update(self, snapshot_id: int) -> None:
        """Raise every gateway to ``snapshot_id``; returns once it is acknowledged (every
        barrier reply back, then every daemon purged)."""
        messages = self.prepared.pop(snapshot_id, None)
        if messages is None:
            self.encoded_in_loop += 1
            messages = self.messages.of(snapshot_id)
        for connection, data in zip(self.connections, messages, strict=True):
            connection.sendall(data)
        waiting = len(self.connections)
        while waiting:
            ready = self.selector.select(REPLY_TIMEOUT)
            if not ready:
                raise TimeoutError(f"update {snapshot_id}: {waiting} barrier replies missing")
            for key, _ in ready:
                waiting -= self._read(key.fileobj, key.data)  # type: ignore[arg-type]
        for unixctl in self.unixctls:
            unixctl.call("revalidator/purge")

    def _read(self, connection: socket.socket, gateway: str) -> int:
        """Read what ``gateway`` sent; returns how many barrier replies it holds."""
        chunk = connection.recv(65536)
        if not chunk:
            raise ConnectionError(f"gateway {gateway}: the bridge closed the connection")
        buffer = self.buffers[connection]
        buffer += chunk
        replies = 0
        for kind, xid, message in take_messages(buffer):
            if kind == ofproto_v1_3.OFPT_BARRIER_REPLY:
                replies += 1
            elif kind == ofproto_v1_3.OFPT_ERROR:
                raise RuntimeError(f"gateway {gateway}: OpenFlow error {message.hex()}")
            elif kind == ofproto_v1_3.OFPT_ECHO_REQUEST:
                reply = HEADER.pack(ofproto_v1_3.OFP_VERSION, ofproto_v1_3.OFPT_ECHO_REPLY,
                                    len(message), xid) + message[HEADER.size:]
                connection.sendall(reply)
        return replies

    def close(self) -> None:
        self.selector.close()
        for connection in self.connections:
            connection.close()
        for unixctl in self.unixctls:
            unixctl.close()

    def __enter__(self) -> LeanUpdater:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
