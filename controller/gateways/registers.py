"""How a gateway's current snapshot id reaches its stamp and observe rules: registers.

An id update rewrites one rule per gateway, the ``current`` table's
(:mod:`controller.gateways.pipeline`), and nothing else. That rule writes the
gateway's id into Open vSwitch registers, which every packet enters a switch
with at 0 and which never leave it:

* the id's wire code into :data:`CODE_REGISTER`; the fixed stamp rule copies it
  into the TOS byte (:data:`STAMP_ACTIONS`: its DSCP and ECN fields, split as
  :func:`beaver.ids.tos_fields` splits them);
* the id's :func:`~controller.gateways.stamping.stamp_mark` into
  :data:`MARK_REGISTER`; the stamp rule copies it into ``pkt_mark``, so each
  cached datapath flow of the stamp path still shows the id it stamps;
* the wire codes ahead of the id (those a gateway adopts from in-group traffic)
  as a bitmap: bit ``c % 32`` of register ``c // 32`` (:data:`AHEAD_REGISTERS`)
  is set for each such code ``c``. The observe table holds one fixed rule per
  wire code, matching the code in the TOS byte and its bit in the bitmap
  (:func:`ahead_match`).

Fixed rules matching (current code, packet code) pairs would do the same with
``codes * window`` rules (255 x 64 = 16,320 per gateway); the bitmap needs one
per code (255).
"""

from __future__ import annotations

from collections.abc import Iterable

from beaver.ids import ECN_BITS, TOS_BITS
from controller.gateways.rules import Move, SetField

REGISTER_BITS = 32
AHEAD_REGISTERS = tuple(f"reg{index}" for index in range((1 << TOS_BITS) // REGISTER_BITS))
"""reg0..reg7: one bit per wire code of the TOS byte, set for the codes ahead of the id."""
CODE_REGISTER = "reg8"
MARK_REGISTER = "reg9"
REGISTERS = frozenset((*AHEAD_REGISTERS, CODE_REGISTER, MARK_REGISTER))
"""Every register the gateway rules use (Nicira extension fields, not OpenFlow 1.3's)."""

STAMP_ACTIONS = (
    Move(CODE_REGISTER, "ip_dscp", TOS_BITS - ECN_BITS, source_offset=ECN_BITS),
    Move(CODE_REGISTER, "ip_ecn", ECN_BITS),
    Move(MARK_REGISTER, "pkt_mark", REGISTER_BITS),
)
"""The stamp rule's actions: the code from its register into the TOS byte, the mark into
``pkt_mark``."""


def _bit(code: int) -> tuple[str, int]:
    """The register and the one-bit mask that stand for wire code ``code`` in the bitmap."""
    if not 0 < code < 1 << TOS_BITS:
        raise ValueError(f"a wire code in the TOS byte is 1..{(1 << TOS_BITS) - 1}, got {code}")
    return AHEAD_REGISTERS[code // REGISTER_BITS], 1 << code % REGISTER_BITS


def ahead_actions(ahead: Iterable[int]) -> tuple[SetField, ...]:
    """The bitmap of the wire codes ``ahead`` of an id, one set-field per register of
    :data:`AHEAD_REGISTERS`. Every register is written, those left at 0 too, so that the
    ``current`` rule has the same actions for every id, only their values differ (the
    controller rewrites its serialised flow-mod in place: ``openflow.FlowModTemplate``)."""
    words = dict.fromkeys(AHEAD_REGISTERS, 0)
    for wire in ahead:
        register, bit = _bit(wire)
        words[register] |= bit
    return tuple(SetField(register, word) for register, word in words.items())


def current_actions(code: int, mark: int, ahead: tuple[SetField, ...]) -> tuple[SetField, ...]:
    """The ``current`` rule's actions for an id with wire code ``code``, pkt_mark ``mark``
    and the bitmap ``ahead`` (:func:`ahead_actions`) of the codes ahead of it."""
    return (SetField(CODE_REGISTER, code), SetField(MARK_REGISTER, mark), *ahead)


def ahead_match(code: int) -> dict[str, tuple[int, int]]:
    """The match (value, mask) of an observe rule on the bitmap: ``code`` is ahead."""
    register, bit = _bit(code)
    return {register: (bit, bit)}
