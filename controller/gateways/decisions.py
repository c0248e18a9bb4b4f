"""What the controller decides, as plain objects: the os-ken app only translates.

:class:`GatewayController` holds one core :class:`beaver.gateway.Gateway`
per gateway switch, the Maglev tables of the services and the id updates in
progress. Its handlers return operations (:data:`Op`) for the app to send;
those that record times take them as arguments (``now``, seconds on
``time.monotonic()``), so tests drive them with a made-up clock. The
snapshot-id logic itself is the core's: this module only says which rules
express it.
"""

from __future__ import annotations

from dataclasses import dataclass

from beaver.gateway import Gateway
from beaver.ids import TOS_BITS, IdSpace, ipv4_space
from beaver.records import GatewayTiming
from controller.gateways.maglev import DEFAULT_SIZE, FlowKey, MaglevTable
from controller.gateways.pipeline import (
    FABRIC_PIPELINE,
    GATEWAY_PIPELINE,
    Purpose,
    check_rules,
    cookie,
)
from controller.gateways.registers import (
    STAMP_ACTIONS,
    ahead_actions,
    ahead_match,
    current_actions,
)
from controller.gateways.rules import (
    ETH_TYPE_IP,
    Action,
    Output,
    Rule,
    SetField,
    ToController,
    border_spread_rule,
    fabric_rules,
    gateway_rules,
    loss_rules,
    match,
    spine_for_leaf,
    tos_match,
)
from controller.gateways.stamping import StampLane, stamp_mark
from controller.gateways.updates import IdUpdate
from topologies.addressing import AddressPlan, InGroupHost

FLOW_IDLE_TIMEOUT = 120
"""Seconds an idle per-flow balance rule stays installed."""
PROBE_ETH_TYPE = 0x88B5
IP_PACKETS = match(eth_type=ETH_TYPE_IP)
OBSERVE_COPY_BYTES = 128
"""Bytes of an in-group packet copied to the controller: headers are enough."""


@dataclass(frozen=True)
class Install:
    rule: Rule


@dataclass(frozen=True)
class ReplaceCurrent:
    """Rewrite a gateway's ``current`` rule in place: the one flow-mod that changes the id
    it stamps and the ids its observe rules copy (see :mod:`controller.gateways.registers`).

    ``acknowledged``: an id update's flow-mod; a barrier follows, and its reply
    goes to :meth:`GatewayController.stamp_acked`. Optimistic restamps have none.
    """

    rule: Rule
    snapshot_id: int
    acknowledged: bool = False


@dataclass(frozen=True)
class PacketOut:
    switch: str
    actions: tuple[Action, ...]


Op = Install | ReplaceCurrent | PacketOut


class GatewayController:
    """Decisions for every switch of one address plan."""

    def __init__(self, plan: AddressPlan, space: IdSpace | None = None,
                 maglev_size: int = DEFAULT_SIZE, stamp_depth: int = 2,
                 data_loss: float = 0.0) -> None:
        self.plan = plan
        self.space = space or ipv4_space()
        self.gateways = {g.name: Gateway(g.name, self.space) for g in plan.gateways}
        self.tables = {
            s.name: MaglevTable(s.backends, maglev_size) for s in plan.services if s.backends
        }
        self.connected: set[str] = set()
        self.updates: list[IdUpdate] = []
        self.stamp_depth = stamp_depth
        """Stamp flow-mods per gateway that may await their barrier at once."""
        self.lanes = {name: StampLane[GatewayTiming](stamp_depth) for name in self.gateways}
        self._ahead: dict[int, tuple[SetField, ...]] = {}
        """Wire code -> the ``current`` rule's bitmap of the codes ahead of an id with it."""
        self._fabric_rules = fabric_rules(plan) + loss_rules(plan, data_loss)
        """Proactive fabric rules, with those dropping ``data_loss`` of in-group datagrams."""

    # -- switches -------------------------------------------------------------------------
    def on_connect(self, switch: str) -> list[Op]:
        """Everything a switch needs when it (re)connects."""
        self.connected.add(switch)
        if switch in self.gateways:
            self.lanes[switch].clear()
            rules = [*gateway_rules(self.plan, switch), self.current_rule(switch),
                     self.stamp_rule(switch), *self.observe_rules(switch)]
            check_rules(GATEWAY_PIPELINE, rules)
        else:
            rules = [r for r in self._fabric_rules if r.switch == switch]
            check_rules(FABRIC_PIPELINE, rules)
        return [Install(r) for r in rules]

    def on_disconnect(self, switch: str) -> list[IdUpdate]:
        """A switch left: its pending id updates fail. Returns the updates that settled."""
        self.connected.discard(switch)
        if switch in self.lanes:
            self.lanes[switch].clear()
        settled = []
        for update in self.updates:
            part = update.gateways.get(switch)
            if part is not None and part.acked_at is None and not part.failed:
                part.failure = "disconnected before the barrier reply"
                settled.append(update)
        return [u for u in settled if u.settled]

    # -- stamping ---------------------------------------------------------------------------
    def current_rule(self, gateway: str) -> Rule:
        """The gateway's id in registers: its wire code, its ``pkt_mark`` (see
        ``stamping.stamp_mark``) and the wire codes ahead of it; the cookie holds the id."""
        state = self.gateways[gateway]
        code = state.stamp()
        ahead = self._ahead.get(code)
        if ahead is None:  # the codes ahead of an id depend on its wire code only
            ahead = self._ahead[code] = ahead_actions(self.space.ahead_wires(state.current))
        actions = current_actions(code, stamp_mark(state.current), ahead)
        return Rule(gateway, "current", 10, IP_PACKETS, actions,
                    goto="classify", cookie=cookie(Purpose.CURRENT, state.current))

    def stamp_rule(self, gateway: str) -> Rule:
        """Stamp the id the ``current`` rule holds, and mark it in ``pkt_mark`` (fixed)."""
        return Rule(gateway, "stamp", 10, IP_PACKETS, STAMP_ACTIONS,
                    goto="balance", cookie=cookie(Purpose.STAMP))

    def observe_rules(self, gateway: str) -> list[Rule]:
        """One fixed rule per TOS byte: copy an in-group packet carrying it to the
        controller when the ``current`` rule marks it as that of a code ahead of the
        gateway's id (the controller decodes the whole code: see
        :mod:`controller.gateways.registers`)."""
        return [
            Rule(gateway, "observe", 100,
                 match(eth_type=ETH_TYPE_IP, **tos_match(tos), **ahead_match(tos)),
                 (ToController(OBSERVE_COPY_BYTES),), goto="balance",
                 cookie=cookie(Purpose.OBSERVE, tos))
            for tos in range(1 << TOS_BITS)
        ]

    def probe_rule(self, gateway: str) -> Rule:
        """A rule no packet matches (local experimental EtherType): for timing one flow-mod."""
        return Rule(gateway, "classify", 1, match(eth_type=PROBE_ETH_TYPE),
                    cookie=cookie(Purpose.PROBE))

    def _restamp(self, gateway: str, acknowledged: bool = False) -> list[Op]:
        return [ReplaceCurrent(self.current_rule(gateway), self.gateways[gateway].current,
                               acknowledged)]

    def start_update(self, snapshot_id: int, now: float) -> tuple[IdUpdate, list[Op]]:
        """Raise every gateway to ``snapshot_id``; disconnected gateways fail at once.

        A gateway with ``stamp_depth`` flow-mods in flight gets none now: its
        part waits in its :class:`StampLane` and is sent, merged with any
        later ones, when :meth:`stamp_acked` says so.
        """
        update = IdUpdate(snapshot_id, now)
        ops: list[Op] = []
        for name, gateway in self.gateways.items():
            part = update.gateways[name] = GatewayTiming(name)
            gateway.set_id(snapshot_id)  # a gateway that reconnects later stamps the newest id
            if name not in self.connected:
                part.failure = "not connected"
                continue
            if self.lanes[name].ask(part):
                ops += self._restamp(name, acknowledged=True)
        self.updates.append(update)
        return update, ops

    def stamp_sent(self, gateway: str, now: float) -> None:
        """An acknowledged stamp flow-mod left for ``gateway`` at ``now``."""
        for part in self.lanes[gateway].sending():
            if part.sent_at is None:
                part.sent_at = now

    def stamp_acked(self, gateway: str, now: float, failure: str | None = None) -> list[Op]:
        """The barrier after ``gateway``'s oldest stamp flow-mod in flight returned.

        Every update that flow-mod carried is acknowledged (or, with ``failure``,
        fails: the new rule could not be made to hold); returns the flow-mod for
        the updates that waited, if any.
        """
        parts, more = self.lanes[gateway].acked()
        for part in parts:
            if not part.failed:
                if failure is None:
                    part.acked_at = now
                else:
                    part.failure = failure
        return self._restamp(gateway, acknowledged=True) if more else []

    def expire(self, update: IdUpdate, reason: str) -> None:
        """Give up waiting: every gateway that has not acked has failed."""
        for part in update.gateways.values():
            if part.acked_at is None and not part.failed:
                part.failure = reason

    def forget(self, update: IdUpdate) -> None:
        if update in self.updates:
            self.updates.remove(update)

    def on_ingroup_copy(self, gateway: str, wire: int) -> list[Op]:
        """Optimistic marking: an in-group packet crossed ``gateway`` carrying ``wire``."""
        if not self.gateways[gateway].observe_ingroup(wire):
            return []
        return self._restamp(gateway)

    def ids(self) -> dict[str, int]:
        return {name: g.current for name, g in self.gateways.items()}

    def coalesced(self) -> dict[str, int]:
        """Per gateway, the updates so far whose flow-mod a newer update's replaced."""
        return {name: lane.coalesced for name, lane in self.lanes.items()}

    def steer(self, only: str | None) -> Rule:
        """The border rule that sends every inbound flow through ``only`` (None: spread)."""
        if only is not None and only not in self.gateways:
            raise KeyError(f"no gateway named {only!r}")
        return border_spread_rule(self.plan, only)

    # -- balancing --------------------------------------------------------------------------
    def backend_for(self, flow: FlowKey) -> InGroupHost:
        service = self.plan.service_of_vip(flow.dst)
        return self.plan.host(self.tables[service.name].lookup(flow))

    def on_balance_miss(self, gateway: str, flow: FlowKey) -> list[Op]:
        """First packet of a flow: pin it to its backend on this gateway and forward it.

        A flow to an address of the VIP range that no service has is dropped.
        """
        if not any(s.vip == flow.dst for s in self.plan.services):
            return []
        backend = self.backend_for(flow)
        fields: dict[str, object] = {"eth_type": ETH_TYPE_IP, "ip_proto": flow.proto,
                                     "ipv4_src": flow.src, "ipv4_dst": flow.dst}
        if flow.proto in PORT_FIELDS:
            source_field, destination_field = PORT_FIELDS[flow.proto]
            fields[source_field], fields[destination_field] = flow.sport, flow.dport
        rewrite = (SetField("ipv4_dst", backend.dip), SetField("eth_dst", backend.mac))
        rule = Rule(gateway, "balance", 100, match(**fields), rewrite, goto="forward",
                    cookie=cookie(Purpose.BALANCE_FLOW), idle_timeout=FLOW_IDLE_TIMEOUT)
        uplink = spine_for_leaf(self.plan, backend.leaf)
        out = Output(self.plan.port_between(gateway, uplink.name))
        return [Install(rule), PacketOut(gateway, (*rewrite, out))]


PORT_FIELDS = {6: ("tcp_src", "tcp_dst"), 17: ("udp_src", "udp_dst")}
"""IP protocol -> the os-ken match fields of its ports."""
