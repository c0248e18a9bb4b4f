"""How a gateway's current snapshot id reaches its stamp and observe rules: registers.

An id update rewrites one rule per gateway, the ``current`` table's
(:mod:`controller.gateways.pipeline`), and nothing else. That rule writes the
gateway's id into Open vSwitch registers, which every packet enters a switch
with at 0 and which never leave it:

* the id's wire code into :data:`CODE_REGISTER`, as the header bytes that carry it
  (:func:`beaver.ids.ipv4_marks`): the TOS byte in bits 0..7, the TTL in bits 8..15
  (the code's top two bits in its lowest, its high bit set, no entropy); the fixed
  stamp rule copies them into the packet (:data:`STAMP_ACTIONS`: the DSCP and ECN
  fields, split as :func:`beaver.ids.tos_fields` splits them, and the TTL);
* the id's :func:`~controller.gateways.stamping.stamp_mark` into
  :data:`MARK_REGISTER`; the stamp rule copies it into ``pkt_mark``, so each
  cached datapath flow of the stamp path still shows the id it stamps;
* the TOS bytes of the wire codes ahead of the id (those a gateway adopts from
  in-group traffic, :meth:`beaver.ids.IdSpace.ahead_wires`) as a bitmap: bit
  ``t % 32`` of register ``t // 32`` (:data:`AHEAD_REGISTERS`) is set for each
  such TOS byte ``t``. The observe table holds one fixed rule per TOS byte,
  matching it and its bit in the bitmap (:func:`ahead_match`).

A 1,023-bit bitmap of whole codes would not fit the registers, so the bitmap
over-approximates: it holds a code's low 8 bits only. The ids a gateway at id
``g`` recognises are ``g + 1 .. g + lead`` with a lead of at most 127
(:data:`beaver.ids.IPV4_LEAD`), whose codes are consecutive modulo 1,023 and
so span at most 128 consecutive values modulo 1,024: their TOS bytes are all
different, and every packet truly ahead matches. A packet whose TOS byte
matches but whose TTL bits say another code (an id about 256, 512 or 768 away from
one ahead: at least 128 behind the gateway's, as no id further ahead starts) is copied
to the controller too, which decodes the whole code and
ignores it (:meth:`beaver.gateway.Gateway.observe_ingroup` adopts newer ids
only). The coordinator starts no id more than the lead ahead of a gateway's
acknowledged one (:mod:`beaver.wire_floor`), so no in-group id is ever further
ahead than the bitmap reaches.

Fixed rules matching (current code, packet code) pairs would do the same with
``codes * lead`` rules (1,023 x 127 per gateway); the bitmap needs one per TOS
byte (256).
"""

from __future__ import annotations

from collections.abc import Iterable

from beaver.ids import ECN_BITS, TOS_BITS, ipv4_marks
from controller.gateways.rules import Move, SetField

REGISTER_BITS = 32
AHEAD_REGISTERS = tuple(f"reg{index}" for index in range((1 << TOS_BITS) // REGISTER_BITS))
"""reg0..reg7: one bit per TOS byte, set for the TOS bytes of the codes ahead of the id."""
CODE_REGISTER = "reg8"
MARK_REGISTER = "reg9"
REGISTERS = frozenset((*AHEAD_REGISTERS, CODE_REGISTER, MARK_REGISTER))
"""Every register the gateway rules use (Nicira extension fields, not OpenFlow 1.3's)."""

STAMP_ACTIONS = (
    Move(CODE_REGISTER, "ip_dscp", TOS_BITS - ECN_BITS, source_offset=ECN_BITS),
    Move(CODE_REGISTER, "ip_ecn", ECN_BITS),
    Move(CODE_REGISTER, "nw_ttl", 8, source_offset=TOS_BITS),
    Move(MARK_REGISTER, "pkt_mark", REGISTER_BITS),
)
"""The stamp rule's actions: the code from its register into the TOS byte and the TTL,
the mark into ``pkt_mark``."""


def _bit(tos: int) -> tuple[str, int]:
    """The register and the one-bit mask that stand for TOS byte ``tos`` in the bitmap."""
    if type(tos) is not int or not 0 <= tos < 1 << TOS_BITS:
        raise ValueError(f"a TOS byte is 0..{(1 << TOS_BITS) - 1}, got {tos!r}")
    return AHEAD_REGISTERS[tos // REGISTER_BITS], 1 << tos % REGISTER_BITS


def ahead_actions(ahead: Iterable[int]) -> tuple[SetField, ...]:
    """The bitmap of the TOS bytes of the wire codes ``ahead`` of an id (at most 128
    consecutive codes: each has its own TOS byte), one set-field per register of
    :data:`AHEAD_REGISTERS`. Every register is written, those left at 0 too, so that the
    ``current`` rule has the same actions for every id, only their values differ (the
    controller rewrites its serialised flow-mod in place: ``openflow.FlowModTemplate``)."""
    bitmap = 0  # bit t for TOS byte t: bit t % 32 of register t // 32, as _bit says
    for wire in ahead:
        bitmap |= 1 << ipv4_marks(wire)[0]
    word = (1 << REGISTER_BITS) - 1
    return tuple(SetField(register, bitmap >> index * REGISTER_BITS & word)
                 for index, register in enumerate(AHEAD_REGISTERS))


def current_actions(code: int, mark: int, ahead: tuple[SetField, ...]) -> tuple[SetField, ...]:
    """The ``current`` rule's actions for an id with wire code ``code``, pkt_mark ``mark``
    and the bitmap ``ahead`` (:func:`ahead_actions`) of the codes ahead of it."""
    tos, ttl = ipv4_marks(code)
    return (SetField(CODE_REGISTER, ttl << TOS_BITS | tos), SetField(MARK_REGISTER, mark), *ahead)


def ahead_match(tos: int) -> dict[str, tuple[int, int]]:
    """The match (value, mask) of an observe rule on the bitmap: TOS byte ``tos`` is that
    of a code ahead."""
    register, bit = _bit(tos)
    return {register: (bit, bit)}
