"""The plain rules of :mod:`controller.gateways.rules` as os-ken OpenFlow 1.3 messages.

:mod:`controller.gateways.decisions` speaks in :class:`~controller.gateways.rules.Rule`
values that name their tables; this module is the one place that knows how they become
bytes on a switch connection: table names become the ids the pipeline declares
(:mod:`controller.gateways.pipeline`), actions become OpenFlow (and, for the hashed
spread over spines and the copies between fields, Nicira bundle and move) actions,
and a packet sent to the controller becomes the
:class:`~controller.gateways.maglev.FlowKey` the balancer picks a backend by.
"""

from __future__ import annotations

import itertools
import random
import struct
from typing import Any

from os_ken.lib.packet import packet, tcp, udp
from os_ken.ofproto import nicira_ext, ofproto_protocol, ofproto_v1_3, ofproto_v1_3_parser

from controller.gateways.maglev import FlowKey
from controller.gateways.pipeline import Table, table
from controller.gateways.registers import REGISTERS
from controller.gateways.rules import HashSpread, Move, Output, Rule, SetField, ToController

NICIRA_FIELDS = frozenset({"nw_ttl", *REGISTERS})
"""Match fields of the rules that are Nicira extensions, not OpenFlow 1.3 fields."""
HASH_FIELDS_SYMMETRIC_L3L4_UDP = 3
"""OVS ``nx_hash_fields`` value hashing IP addresses, protocol and TCP/UDP/SCTP ports
(os-ken names only the first two values; ``symmetric_l4`` ignores UDP ports)."""


def flow_mod(datapath: Any, pipeline: tuple[Table, ...], rule: Rule, delete: bool = False) -> Any:
    """The message that adds ``rule`` to (or, with ``delete``, removes it from) ``datapath``."""
    ofp, parser = datapath.ofproto, datapath.ofproto_parser
    instructions = []
    if rule.actions:
        instructions.append(parser.OFPInstructionActions(
            ofp.OFPIT_APPLY_ACTIONS, of_actions(datapath, rule.actions)))
    if rule.goto is not None:
        instructions.append(parser.OFPInstructionGotoTable(table(pipeline, rule.goto).table_id))
    return parser.OFPFlowMod(
        datapath, cookie=rule.cookie, table_id=table(pipeline, rule.table).table_id,
        command=ofp.OFPFC_DELETE_STRICT if delete else ofp.OFPFC_ADD,
        idle_timeout=rule.idle_timeout, priority=rule.priority,
        out_port=ofp.OFPP_ANY, out_group=ofp.OFPG_ANY,
        match=_match(parser, rule), instructions=instructions)


class FlowModTemplate:
    """The flow-mod of one rule, serialised once by os-ken, rewritten for rules that differ
    from it only in their cookie and the values of their set-field actions.

    A gateway's ``current`` rule changes with every id update in exactly these
    (:func:`controller.gateways.registers.ahead_actions` writes every register, so
    its actions keep their layout), and serialising it with os-ken cost more of the
    controller's CPU than anything else an update does per gateway
    (docs/dataplane-history.md).
    :meth:`encode` packs, in one call of a :class:`struct.Struct` made from the serialised
    message, its bytes with the xid, the cookie and each value where the OpenFlow 1.3
    layout puts them: the header's xid, ``ofp_flow_mod``'s cookie, and, in the
    apply-actions instruction after the match (padded to 8 bytes), each set-field
    action's OXM value after its type, length and OXM header.
    """

    def __init__(self, datapath: Any, pipeline: tuple[Table, ...], rule: Rule) -> None:
        message = flow_mod(datapath, pipeline, rule)
        message.xid = 0
        message.serialize()
        serialised = bytes(message.buf)
        self._shape = _shape(rule)
        values = _set_field_values(serialised)
        self._count = len(values)
        if self._count != sum(isinstance(a, SetField) for a in rule.actions):
            raise ValueError(f"cannot find every set-field value of {rule} in its flow-mod")
        layout, self._kept, at = "!", [], 0
        for offset, size in [XID_FIELD, COOKIE_FIELD, *values]:
            if size not in INTEGERS:
                raise ValueError(f"a {size}-byte set-field value in {rule} is not an integer")
            layout += f"{offset - at}s{INTEGERS[size]}"
            self._kept.append(serialised[at:offset])
            at = offset + size
        self._struct = struct.Struct(f"{layout}{len(serialised) - at}s")
        self._kept.append(serialised[at:])

    def fits(self, rule: Rule) -> bool:
        """Whether ``rule`` differs from the template's only in cookie and set-field values."""
        return _shape(rule) == self._shape

    def encode(self, rule: Rule, xid: int) -> bytes:
        """The flow-mod adding ``rule`` (one that :meth:`fits`), with transaction id ``xid``."""
        values = [action.value for action in rule.actions if isinstance(action, SetField)]
        if len(values) != self._count:
            raise ValueError(f"{rule} has not the template's {self._count} set-field actions")
        fields: list[Any] = [None] * (2 * self._count + 5)
        fields[0::2] = self._kept
        fields[1::2] = [xid, rule.cookie, *values]
        return self._struct.pack(*fields)


class CurrentRuleMessages:
    """Per gateway, the flow-mod of its ``current`` rule as a :class:`FlowModTemplate`,
    serialised anew only when a rule's shape is new."""

    def __init__(self, pipeline: tuple[Table, ...]) -> None:
        self.pipeline = pipeline
        self._templates: dict[str, FlowModTemplate] = {}

    def encode(self, datapath: Any, rule: Rule, xid: int) -> bytes:
        template = self._templates.get(rule.switch)
        if template is None or not template.fits(rule):
            template = self._templates[rule.switch] = FlowModTemplate(
                datapath, self.pipeline, rule)
        return template.encode(rule, xid)


class BarrierRequests:
    """The controller's barrier requests: serialised by os-ken once, each with the next xid of
    one counter for every connection (the controller alone sends barriers, so a barrier
    reply with an xid answers the request with it, on no other connection either)."""

    def __init__(self) -> None:
        request = ofproto_v1_3_parser.OFPBarrierRequest(
            ofproto_protocol.ProtocolDesc(ofproto_v1_3.OFP_VERSION))
        request.xid = 0
        request.serialize()
        self._serialised = bytes(request.buf)
        self._xids = itertools.count(random.randrange(ofproto_v1_3.MAX_XID))

    def next_xid(self) -> int:
        return next(self._xids) & ofproto_v1_3.MAX_XID

    def request(self, xid: int) -> bytes:
        """The barrier request with ``xid``."""
        at, size = XID_FIELD
        return self._serialised[:at] + xid.to_bytes(size, "big") + self._serialised[at + size:]


def packet_out(datapath: Any, actions: tuple[Any, ...], packet_in: Any) -> Any:
    """The packet-out sending the packet of ``packet_in`` on with ``actions``."""
    return datapath.ofproto_parser.OFPPacketOut(
        datapath, buffer_id=datapath.ofproto.OFP_NO_BUFFER, in_port=packet_in.match["in_port"],
        actions=of_actions(datapath, actions), data=packet_in.data)


def delete_all(datapath: Any) -> Any:
    """The flow-mod deleting every rule of every table."""
    ofp, parser = datapath.ofproto, datapath.ofproto_parser
    return parser.OFPFlowMod(datapath, table_id=ofp.OFPTT_ALL, command=ofp.OFPFC_DELETE,
                             out_port=ofp.OFPP_ANY, out_group=ofp.OFPG_ANY)


HEADER = struct.Struct("!BBHI")
"""An OpenFlow message's header: version, type, length, xid."""


def take_messages(buffer: bytearray) -> list[tuple[int, int, bytes]]:
    """(type, xid, whole message) of every complete OpenFlow message at the start of
    ``buffer``, removed from it; a message not yet complete stays. ValueError for a
    length shorter than the header (the stream cannot be framed past it)."""
    messages, at = [], 0
    while len(buffer) - at >= HEADER.size:
        _, kind, length, xid = HEADER.unpack_from(buffer, at)
        if length < HEADER.size:
            raise ValueError(f"an OpenFlow message of length {length}")
        if len(buffer) - at < length:
            break
        messages.append((kind, xid, bytes(buffer[at:at + length])))
        at += length
    del buffer[:at]
    return messages


XID_FIELD, COOKIE_FIELD = (4, 4), (8, 8)
"""(offset, size) of an OpenFlow message's xid and of a flow-mod's cookie."""
INTEGERS = {1: "B", 2: "H", 4: "I", 8: "Q"}
"""Size in bytes -> the :mod:`struct` code of an unsigned big-endian integer."""


def _shape(rule: Rule) -> tuple[Any, ...]:
    """``rule`` without what a :class:`FlowModTemplate` rewrites."""
    return (rule.switch, rule.table, rule.priority, rule.match, rule.goto, rule.idle_timeout,
            [a.field if isinstance(a, SetField) else a for a in rule.actions])


def _set_field_values(message: bytes) -> list[tuple[int, int]]:
    """(offset, size) of each set-field value in a serialised OpenFlow 1.3 flow-mod's
    apply-actions instruction, in order."""
    ofp = ofproto_v1_3
    match_at = ofp.OFP_FLOW_MOD_SIZE - ofp.OFP_MATCH_SIZE
    (match_length,) = struct.unpack_from("!H", message, match_at + 2)
    at, values = match_at + (match_length + 7) // 8 * 8, []
    while at < len(message):
        kind, length = struct.unpack_from("!HH", message, at)
        if kind == ofp.OFPIT_APPLY_ACTIONS:
            action = at + 8
            while action < at + length:
                action_kind, action_length = struct.unpack_from("!HH", message, action)
                if action_kind == ofp.OFPAT_SET_FIELD:
                    oxm_class, _, oxm_length = struct.unpack_from("!HBB", message, action + 4)
                    header = 8 if oxm_class == ofp.OFPXMC_EXPERIMENTER else 4
                    values.append((action + 4 + header, oxm_length + 4 - header))
                action += action_length
        at += length
    return values


def _match(parser: Any, rule: Rule) -> Any:
    """The rule's match with OpenFlow standard fields first: OVS checks each field's
    prerequisites (``eth_type`` before ``nw_ttl``) in order, and os-ken would put Nicira
    extension fields such as ``nw_ttl`` before the standard ones."""
    ordered = sorted(rule.match, key=lambda field: field[0] in NICIRA_FIELDS)
    return parser.OFPMatch(_ordered_fields=ordered)


def of_actions(datapath: Any, actions: tuple[Any, ...]) -> list[Any]:
    """The OpenFlow actions for a rule's (or a packet-out's) plain actions."""
    ofp, parser = datapath.ofproto, datapath.ofproto_parser
    result = []
    for action in actions:
        if isinstance(action, Output):
            result.append(parser.OFPActionOutput(action.port))
        elif isinstance(action, ToController):
            max_len = ofp.OFPCML_NO_BUFFER if action.max_len >= 0xFFFF else action.max_len
            result.append(parser.OFPActionOutput(ofp.OFPP_CONTROLLER, max_len))
        elif isinstance(action, SetField):
            result.append(parser.OFPActionSetField(**{action.field: action.value}))
        elif isinstance(action, Move):
            result.append(parser.NXActionRegMove(
                src_field=action.source, dst_field=action.destination, n_bits=action.bits,
                src_ofs=action.source_offset, dst_ofs=action.destination_offset))
        elif isinstance(action, HashSpread):
            result.append(parser.NXActionBundle(
                algorithm=nicira_ext.NX_BD_ALG_HRW, fields=HASH_FIELDS_SYMMETRIC_L3L4_UDP,
                basis=0, slave_type=nicira_ext.NXM_OF_IN_PORT, n_slaves=len(action.ports),
                ofs_nbits=0, dst=0, slaves=list(action.ports)))
    return result


def flow_key(data: bytes, ip: Any) -> FlowKey:
    """The flow of a packet sent to the controller, ``ip`` its parsed IPv4 header."""
    parsed = packet.Packet(data)
    for header in (tcp.tcp, udp.udp):
        l4 = parsed.get_protocol(header)
        if l4 is not None:
            return FlowKey(ip.proto, ip.src, ip.dst, l4.src_port, l4.dst_port)
    return FlowKey(ip.proto, ip.src, ip.dst)
