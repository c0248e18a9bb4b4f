"""The os-ken application: turns switch events into calls of :mod:`controller.gateways.decisions`.

One process serves every switch of one address plan. Handlers look up the
switch, pass ``time.monotonic()`` to the plain :class:`GatewayController`
and send back what it returns (as OpenFlow messages built by
:mod:`controller.gateways.openflow`); they decide nothing themselves. The control
interface (:mod:`controller.gateways.control`) calls :meth:`GatewayApp.begin_set_id` and
friends from its own threads, so every use of the decisions and of the
datapaths holds one lock.

A switch counts as *ready* when the barrier sent after its proactive rules
came back: all rules before it were applied. A gateway's part of an id
update counts as acknowledged when its barrier came back *and* its datapath
flows follow the new rules (:mod:`controller.gateways.datapath`), so that every
packet it forwards from then on is stamped with the new id; that last step
runs on the applier thread of its daemon, without the lock. Messages to a gateway
leave from the thread that decided them (:mod:`controller.gateways.sending`),
not through os-ken's send thread, once its connection is set up, and what a
gateway sends is read by one thread for all of them, which handles the barrier
replies the app awaits and passes the rest to os-ken
(:mod:`controller.gateways.replies`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from os_ken.base import app_manager
from os_ken.controller import ofp_event
from os_ken.controller.handler import (
    CONFIG_DISPATCHER,
    DEAD_DISPATCHER,
    MAIN_DISPATCHER,
    set_ev_cls,
    set_ev_handler,
)
from os_ken.lib.packet import ipv4, packet
from os_ken.ofproto import ofproto_v1_3

from beaver.ids import IdSpace, ipv4_code, ipv4_space
from controller.gateways.control import ControlServer
from controller.gateways.datapath import SYNC_MODES, appliers_by_gateway
from controller.gateways.decisions import (
    GatewayController,
    Install,
    Op,
    PacketOut,
    ReplaceCurrent,
)
from controller.gateways.openflow import (
    BarrierRequests,
    CurrentRuleMessages,
    delete_all,
    flow_key,
    flow_mod,
    packet_out,
)
from controller.gateways.peers import tcp_peer_uid
from controller.gateways.pipeline import (
    FABRIC_PIPELINE,
    GATEWAY_PIPELINE,
    Purpose,
    purpose_of,
    table,
)
from controller.gateways.replies import GatewayReader
from controller.gateways.rules import Rule
from controller.gateways.sending import DirectSends
from controller.gateways.updates import IdUpdate
from topologies.addressing import AddressPlan
from topologies.secret import RunSecret

log = logging.getLogger("beaver.controller")
CONNECTION_POLL_SECONDS = 0.02


@dataclass(frozen=True)
class AppSettings:
    plan_file: Path
    control_host: str
    control_port: int
    update_timeout: float = 2.0
    space: IdSpace = field(default_factory=ipv4_space)
    secret: RunSecret | None = None
    """The run's secret: control requests must carry its HMAC (None: not checked)."""
    openflow: tuple[str, int] | None = None
    """Where switches connect (host, port): a peer must be root's socket (None: not checked)."""
    datapath_controls: dict[str, Path] = field(default_factory=dict)
    """Gateway -> unixctl socket of the ``ovs-vswitchd`` running it (empty: acknowledge an
    update at its barrier reply, without waiting for its datapath)."""
    data_loss: float = 0.0
    """Share of in-group datagrams the leaves drop (see ``rules.loss_rules``)."""
    datapath_sync: str = SYNC_MODES[0]
    """How a gateway's new rules are made to hold in its datapath (``datapath.SYNC_MODES``)."""


class GatewayApp(app_manager.OSKenApp):
    OFP_VERSIONS = [ofproto_v1_3.OFP_VERSION]
    settings: ClassVar[AppSettings | None] = None
    """Set by ``python -m controller.gateways`` before os-ken instantiates the app."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.settings is None:
            raise RuntimeError("GatewayApp.settings must be set before the app starts")
        self.plan = AddressPlan.from_json(self.settings.plan_file.read_text())
        self.decisions = GatewayController(self.plan, self.settings.space,
                                           data_loss=self.settings.data_loss)
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.names = {s.dpid: s.name for s in self.plan.switches}
        self.datapaths: dict[str, Any] = {}
        self.ready: set[str] = set()
        self.barriers: dict[tuple[int, int], Callable[[float], None]] = {}
        self.probing: set[str] = set()
        """Gateways whose probe rule (see :meth:`roundtrip`) is installed."""
        self.unsettled: deque[tuple[IdUpdate, threading.Event]] = deque()
        """Updates not yet settled, oldest first, each with the event its answer waits for."""
        self.current_messages = CurrentRuleMessages(GATEWAY_PIPELINE)
        self.barrier_requests = BarrierRequests()
        self.sends = DirectSends()
        """Writes to gateways from the caller's thread (:mod:`controller.gateways.sending`)."""
        self.reader = GatewayReader(self._awaited_barrier)
        """Reads the gateways' connections on one thread (:mod:`controller.gateways.replies`)."""
        self.control = ControlServer(self, self.settings.control_host, self.settings.control_port,
                                     self.settings.secret)
        self.appliers = appliers_by_gateway(self.settings.datapath_controls,
                                            self.settings.datapath_sync)

    def start(self) -> Any:
        # These run on the connection's receiving thread, as os-ken's own handshake handlers
        # do, not queued to this app's event thread: a gateway's connection is handed to the
        # reader between two of that thread's reads, and the barrier replies of the other
        # switches wake one thread fewer (docs/dataplane.md).
        brick = app_manager.lookup_service_brick("ofp_event")
        brick.register_handler(
            ofp_event.EventOFPSwitchFeatures,
            set_ev_handler(ofp_event.EventOFPSwitchFeatures, CONFIG_DISPATCHER)(
                lambda event: self._read_gateway(event.msg.datapath, event.msg.datapath_id)))
        brick.register_handler(
            ofp_event.EventOFPBarrierReply,
            set_ev_handler(ofp_event.EventOFPBarrierReply, MAIN_DISPATCHER)(
                lambda event: self.barrier_reply(event)))
        self.reader.start()
        thread = super().start()
        for applier in set(self.appliers.values()):
            applier.start()
        self.control.start()
        threading.Thread(target=self._watch_connections, daemon=True, name="watch").start()
        log.info("control interface on %s:%d", *self.control.address)
        return thread

    def stop(self) -> None:
        self.control.stop()
        self.reader.stop()
        for applier in set(self.appliers.values()):
            applier.stop()
        super().stop()

    # -- switch events ------------------------------------------------------------------
    @set_ev_cls(ofp_event.EventOFPSwitchFeatures, CONFIG_DISPATCHER)
    def switch_features(self, event: Any) -> None:
        datapath = event.msg.datapath
        name = self.names.get(datapath.id)
        if name is None:
            log.warning("ignoring switch with unknown dpid %#x", datapath.id)
            return
        refusal = self._refusal(datapath, name)
        if refusal:
            log.warning("refused a connection from %s claiming dpid %#x (%s): %s",
                        datapath.address, datapath.id, name, refusal)
            datapath.close()
            return
        with self.lock:
            if name in self.datapaths:  # reconnected; the old connection was seen closed
                self._forget_connection(name, self.datapaths[name])
            self.datapaths[name] = datapath
            if name in self.decisions.gateways:
                self.sends.adopt(datapath)
            self.sends.send_msg(datapath, delete_all(datapath))
            self._send_ops(self.decisions.on_connect(name))
            self._barrier(datapath, lambda now: self._mark_ready(name))
            self.sends.go_direct(datapath, self._barrier)
        log.info("switch %s (dpid %#x) connected", name, datapath.id)

    def _read_gateway(self, datapath: Any, dpid: int) -> None:
        """Switch ``dpid``'s features arrived (on its receiving thread): a gateway's
        connection is read by the reader from now on."""
        if self.names.get(dpid) in self.decisions.gateways:
            self.reader.adopt(datapath)

    def _refusal(self, datapath: Any, name: str) -> str | None:
        """Why a connection may not be switch ``name``, or None: not root's, or the name's
        connection is still open."""
        listening = self.settings.openflow  # type: ignore[union-attr]
        if listening is not None:
            uid = tcp_peer_uid(tuple(datapath.address[:2]), listening)
            if uid != 0:
                return f"its socket is not root's (uid {uid}), so it is no Open vSwitch bridge"
        with self.lock:
            current = self.datapaths.get(name)
            if current is not None and current.socket.fileno() != -1:
                return f"{name} is connected from {current.address}"
        return None

    def _watch_connections(self) -> None:
        """Declare datapaths whose socket os-ken closed dead.

        With os-ken's native (thread) hub a closed OpenFlow connection ends the
        receive loop but never reaches ``DEAD_DISPATCHER`` (its send thread
        stays blocked on its queue). A closed socket has file number -1: mark
        such datapaths dead (which emits the state-change event) and wake their
        send thread so it exits.
        """
        while True:
            with self.lock:
                closed = [dp for dp in self.datapaths.values() if dp.socket.fileno() == -1]
            for datapath in closed:
                datapath.set_state(DEAD_DISPATCHER)
                datapath.send(b"", close_socket=True)
            time.sleep(CONNECTION_POLL_SECONDS)

    def _mark_ready(self, name: str) -> None:
        self.ready.add(name)
        self.changed.notify_all()
        log.info("switch %s ready", name)

    @set_ev_cls(ofp_event.EventOFPStateChange, DEAD_DISPATCHER)
    def switch_gone(self, event: Any) -> None:
        datapath = event.datapath
        name = self.names.get(datapath.id) if datapath.id is not None else None
        with self.lock:
            if name is None or self.datapaths.get(name) is not datapath:
                return
            del self.datapaths[name]
            self._forget_connection(name, datapath)
        log.warning("switch %s disconnected", name)

    def _forget_connection(self, name: str, datapath: Any) -> None:
        """A connection ended: its pending barriers will never answer, its updates fail."""
        self.ready.discard(name)
        self.probing.discard(name)
        self.decisions.on_disconnect(name)
        self.barriers = {k: v for k, v in self.barriers.items() if k[0] != datapath.id}
        self.sends.forget(datapath)
        if name in self.appliers:
            self.appliers[name].withdraw(name)
        self._wake_settled()
        self.changed.notify_all()

    def barrier_reply(self, event: Any) -> None:
        """A barrier reply os-ken parsed, on the thread that received it (see :meth:`start`)."""
        self._awaited_barrier(event.msg.datapath, event.msg.xid, time.monotonic())

    def _awaited_barrier(self, datapath: Any, xid: int, now: float) -> bool:
        """The reply to barrier ``xid`` came back on ``datapath`` at ``now``: True if it was
        awaited (its callback ran). Only the switch's current connection answers: a refused
        one claiming its dpid cannot."""
        with self.lock:
            if self.datapaths.get(self.names.get(datapath.id, "")) is not datapath:
                return False
            callback = self.barriers.pop((datapath.id, xid), None)
            if callback is None:
                return False
            callback(now)
            self.changed.notify_all()
            return True

    @set_ev_cls(ofp_event.EventOFPErrorMsg, MAIN_DISPATCHER)
    def error(self, event: Any) -> None:
        msg = event.msg
        log.error("switch %s error type=%d code=%d", self.names.get(msg.datapath.id),
                  msg.type, msg.code)

    @set_ev_cls(ofp_event.EventOFPPacketIn, MAIN_DISPATCHER)
    def packet_in(self, event: Any) -> None:
        msg = event.msg
        name = self.names.get(msg.datapath.id)
        if name not in self.decisions.gateways:
            return
        ip = packet.Packet(msg.data).get_protocol(ipv4.ipv4)
        if ip is None:
            return
        with self.lock:
            if purpose_of(msg.cookie) is Purpose.OBSERVE:
                self._send_ops(self.decisions.on_ingroup_copy(name, ipv4_code(ip.tos, ip.ttl)))
            elif msg.table_id == table(GATEWAY_PIPELINE, "balance").table_id:
                ops = self.decisions.on_balance_miss(name, flow_key(msg.data, ip))
                self._send_ops(ops, packet_in=msg)

    # -- control interface ------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        with self.lock:
            expected = {s.name for s in self.plan.switches}
            return {
                "ready": expected <= self.ready,
                "switches": sorted(expected),
                "connected": sorted(self.datapaths),
                "ready_switches": sorted(self.ready),
                "peers": {name: list(dp.address) for name, dp in sorted(self.datapaths.items())},
                "gateways": [g.name for g in self.plan.gateways],
                "coalesced_updates": self.decisions.coalesced(),
            }

    def ids(self) -> dict[str, int]:
        with self.lock:
            return self.decisions.ids()

    def begin_set_id(self, snapshot_id: int,
                     timeout: float | None = None) -> Callable[[], dict[str, Any]]:
        """Send the flow-mods raising every gateway to ``snapshot_id`` now.

        Returns what waits until each gateway acked or failed. Several
        updates may be outstanding: each datapath's messages leave in the
        order they were sent, so every gateway applies them in order.
        """
        deadline = time.monotonic() + (timeout or self.settings.update_timeout)  # type: ignore
        settled = threading.Event()
        with self.lock:
            update, ops = self.decisions.start_update(snapshot_id, time.monotonic())
            self.unsettled.append((update, settled))
            self._send_ops(ops)
            self._wake_settled()

        def settle() -> dict[str, Any]:
            settled.wait(max(0.0, deadline - time.monotonic()))
            with self.lock:
                if not update.settled:
                    self.decisions.expire(update, "no barrier reply before the timeout")
                    self._wake_settled()
                self.decisions.forget(update)
                return update.to_dict()

        return settle

    def _wake_settled(self) -> None:
        """Answer the updates that settled (lock held). Each gateway settles its updates in
        the order they started, so an update settles no later than every newer one: only
        the oldest can have settled last. (Should one still settle out of order, e.g. after
        a reconnect, its answer comes at its deadline, settled, not expired.)"""
        while self.unsettled and self.unsettled[0][0].settled:
            self.unsettled.popleft()[1].set()

    def roundtrip(self, gateway: str) -> dict[str, float]:
        """One flow-mod that changes the table (a probe rule, added then deleted on the
        next call), its barrier and the datapath sync: one gateway's part of an id update."""
        acked: list[float] = []
        with self.lock:
            datapath = self.datapaths.get(gateway)
            if datapath is None or gateway not in self.decisions.gateways:
                raise KeyError(f"no connected gateway named {gateway!r}")
            delete = gateway in self.probing
            self.probing ^= {gateway}
            sent_at = time.monotonic()
            probe = flow_mod(datapath, GATEWAY_PIPELINE, self.decisions.probe_rule(gateway),
                             delete)
            current = self.decisions.gateways[gateway].current
            probe.xid, barrier = self._synced_barrier(
                gateway, datapath, current, lambda at, failure: acked.append(at))
            probe.serialize()
            self.sends.send(datapath, probe.buf + barrier)
            self.changed.wait_for(lambda: bool(acked),
                                  timeout=self.settings.update_timeout)  # type: ignore[union-attr]
            if not acked:
                raise RuntimeError(f"no barrier reply from {gateway}")
            return {"sent_at": sent_at, "acked_at": acked[0]}

    def steer(self, gateway: str | None) -> None:
        with self.lock:
            rule = self.decisions.steer(gateway)
            datapath = self.datapaths.get(rule.switch)
            if datapath is None:
                raise RuntimeError(f"border switch {rule.switch} is not connected")
            self._send_rule(rule)
            done = threading.Event()
            self._barrier(datapath, lambda now: done.set())
            self.changed.wait_for(done.is_set, timeout=self.settings.update_timeout)  # type: ignore
            if not done.is_set():
                raise RuntimeError(f"no barrier reply from {rule.switch} after steering")

    # -- sending ----------------------------------------------------------------------------
    def _barrier(self, datapath: Any, callback: Callable[[float], None]) -> None:
        self.sends.send(datapath, self._barrier_request(datapath, callback)[1])

    def _barrier_request(self, datapath: Any,
                         callback: Callable[[float], None]) -> tuple[int, bytes]:
        """(xid, bytes) of a barrier request for ``datapath``; its reply calls ``callback``."""
        xid = self.barrier_requests.next_xid()
        self.barriers[(datapath.id, xid)] = callback
        return xid, self.barrier_requests.request(xid)

    def _send_ops(self, ops: list[Op], packet_in: Any = None) -> None:
        for op in ops:
            if isinstance(op, Install):
                self._send_rule(op.rule)
            elif isinstance(op, ReplaceCurrent):
                self._replace_current(op)
            elif isinstance(op, PacketOut) and packet_in is not None:
                datapath = self.datapaths[op.switch]
                self.sends.send_msg(datapath, packet_out(datapath, op.actions, packet_in))

    def _replace_current(self, op: ReplaceCurrent) -> None:
        """The new ``current`` rule, and for an update its barrier, in one write: the
        flow-mod carries the barrier's xid (so an error about it names the update)."""
        gateway = op.rule.switch
        datapath = self.datapaths[gateway]
        if not op.acknowledged:
            self.sends.send(datapath, self.current_messages.encode(
                datapath, op.rule, self.barrier_requests.next_xid()))
            return
        self.decisions.stamp_sent(gateway, time.monotonic())
        xid, barrier = self._synced_barrier(
            gateway, datapath, op.snapshot_id,
            lambda at, failure: self._acked(gateway, at, failure))
        self.sends.send(datapath, self.current_messages.encode(datapath, op.rule, xid) + barrier)

    def _acked(self, gateway: str, at: float, failure: str | None) -> None:
        """The oldest stamp flow-mod in flight to ``gateway`` holds (or failed; lock held)."""
        self._send_ops(self.decisions.stamp_acked(gateway, at, failure))
        self._wake_settled()

    def _synced_barrier(self, gateway: str, datapath: Any, snapshot_id: int,
                        done: Callable[[float, str | None], None]) -> tuple[int, bytes]:
        """(xid, bytes) of a barrier for ``gateway`` (lock held) whose reply calls
        ``done(time, failure)`` once the datapath follows the rules sent before it
        (:meth:`_apply`); the gateway's applier expects it, so that the syncs of the
        gateways on its daemon wait for each other's barriers."""
        applier = self.appliers.get(gateway)
        ticket = applier.expect(gateway) if applier is not None else None
        return self._barrier_request(datapath, lambda now: self._apply(
            gateway, datapath, now, snapshot_id, ticket, done))

    def _apply(self, gateway: str, datapath: Any, barrier_at: float, snapshot_id: int,
               ticket: int | None, done: Callable[[float, str | None], None]) -> None:
        """The barrier of ``gateway`` came back on ``datapath`` (lock held): ``done(time,
        failure)`` once its datapath flows follow the new rules (they stamp ``snapshot_id``
        or a later one): at once without an applier, else from its thread, if the
        connection is still the same."""
        applier = self.appliers.get(gateway)
        if applier is None:
            done(barrier_at, None)
            return

        def synced(failure: str | None) -> None:
            now = time.monotonic()
            with self.lock:
                if self.datapaths.get(gateway) is datapath:  # else its updates failed already
                    done(now, failure)
                self.changed.notify_all()

        applier.after_sync(snapshot_id, synced, ticket)

    def _send_rule(self, rule: Rule, delete: bool = False) -> None:
        datapath = self.datapaths[rule.switch]
        pipeline = GATEWAY_PIPELINE if rule.switch in self.decisions.gateways else FABRIC_PIPELINE
        self.sends.send_msg(datapath, flow_mod(datapath, pipeline, rule, delete))
