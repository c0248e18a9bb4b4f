"""Snapshot ids and their wire form.

A *full id* is an unbounded non-negative integer: 0 is the epoch before any
snapshot, snapshot k moves a process from epoch k-1 to epoch k. On the wire
only a few header bits are available, so the wire form is the full id
modulo the number of usable codes, compared with serial-number arithmetic
(RFC 1982 style).

Wire code 0 is reserved for *unmarked* traffic (packets no Beaver process
stamped, e.g. out-group traffic under a protocol without gateways), so the
usable codes are 1..2**bits-1 and ``wire(k) = k mod (2**bits-1) + 1``.

Decoding needs a reference: the receiver's own full id. The protocol keeps
every id alive in the system within ``window`` of each other (the
coordinator never has more than ``window`` snapshots in flight), so a wire
code decodes to the unique full id within ``window`` of the reference. A
code that decodes to no such id is *out of window*: it is rejected, never
adopted. Unique decoding needs ``2 * window + 1 <= codes``: at most 31
snapshots in flight with 6 bits, 127 with 8 (the paper's prototype: 8191
with 14 bits). A smaller window leaves codes that no correct process can
send, so corrupt or forged marks are caught: of the ``codes`` a process may
receive, ``2 * window + 1`` decode and the rest are refused.

A wire code says an id's distance from the reference only modulo
``codes``: an id further than ``window`` away decodes to the wrong full id
(it aliases). Nothing in a packet can tell, so the protocol makes it
impossible: the coordinator (:mod:`beaver.wire_floor`) never starts an
id more than ``window`` ahead of the oldest id that may still be on the
wire, and a stamped packet is assumed to be delivered or lost within a
*maximum packet lifetime* of being stamped (as TCP assumes a maximum
segment lifetime before reusing sequence numbers). More bits buy a wider
window, and the window bounds the snapshot rate the coordinator can
sustain: at most ``window`` snapshots per packet lifetime (plus the time a
snapshot takes to finish).

Ids and codes are ``int`` (not ``bool``, not ``float``): anything else is
refused with :class:`InvalidId` before any state changes.

In an IPv4 header (the emulation) a code takes :data:`IPV4_ID_BITS` = 10
bits: the whole TOS byte (the six DSCP bits and the two ECN bits below
them) holds its low eight bits, and the two lowest bits of the TTL its top
two (:func:`ipv4_marks` splits a code into the TOS and TTL a packet
carries, :func:`ipv4_code` joins them; :func:`tos_fields` splits the TOS
byte into the DSCP and ECN fields a switch matches and writes). Every
stamped TTL has its high bit set (at least 128), and the five bits between
carry the per-datagram *entropy* the fabric's loss rules drop by
(:data:`TTL_ENTROPY`; 0 where nothing draws it). The emulation's space is
:func:`ipv4_space`, by default with a window of :data:`IPV4_WINDOW`; a
gateway recognises ids at most :data:`IPV4_LEAD` ahead of its own (its
observe rules match the TOS byte alone: :mod:`controller.gateways.registers`).
The paper's prototype takes six TTL bits (14 bits); the emulation keeps
five for the entropy. The simulator keeps the :class:`IdSpace` defaults (6
bits, a window of 16).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

UNMARKED = 0
"""The wire code of traffic that carries no snapshot id."""
TOS_BITS = 8
"""Bits of the TOS byte (DSCP and ECN): the low bits of an IPv4 wire code."""
ECN_BITS = 2
"""The low bits of the TOS byte, its ECN field; the DSCP field is the bits above them."""
TTL_ID_BITS = 2
"""The TTL's lowest bits, which carry the top bits of an IPv4 wire code."""
IPV4_ID_BITS = TOS_BITS + TTL_ID_BITS
"""Bits of a wire code in an IPv4 header: the TOS byte and two TTL bits (1,023 codes)."""
TTL_HIGH_BIT = 0x80
"""Set in every TTL a stamped packet carries, so that it stays at least 128."""
TTL_ENTROPY_BITS = 5
"""The TTL bits between its high bit and the id's bits."""
TTL_ENTROPY = range(1 << TTL_ENTROPY_BITS)
"""The per-datagram entropy an in-group datagram's TTL carries (0..31): the loss rules
drop a share of datagrams by it, in steps of 1/32 (``beaver run --data-loss``)."""
IPV4_WINDOW = 448
"""The emulation's default window. Ids alive at once number about rate * (packet lifetime +
the time a snapshot takes to finish): at 1,000 starts/s with the emulation's 200 ms and
finish times of 130-200 ms p50 under load (docs/dataplane.md), 330-400, more in the tail.
448 allows that, while 126 of the 1,023 codes (as many as the 8-bit default left of 255)
still decode to no id within the window of any receiver, so a corrupt mark is refused that
often. The largest window 10 bits allow is 511 (every code decodes)."""
IPV4_LEAD = 127
"""How far an id may be ahead of a gateway's id for the gateway to recognise it: its
observe rules see the TOS byte only, and a code's low 8 bits name it uniquely among the
127 ids ahead (see :mod:`controller.gateways.registers`)."""


def _require_code(code: object, bits: int, what: str) -> int:
    if type(code) is not int or not 0 <= code < 1 << bits:
        raise ValueError(f"{what} is 0..{(1 << bits) - 1}, got {code!r}")
    return code


def ipv4_marks(code: int, entropy: int = 0) -> tuple[int, int]:
    """The (TOS, TTL) of an IPv4 packet carrying wire code ``code`` and TTL entropy
    ``entropy``: the code's low 8 bits are the TOS byte, its top 2 the TTL's lowest bits,
    ``entropy`` the 5 TTL bits above them, and the TTL's high bit is set. ValueError
    unless ``code`` fits :data:`IPV4_ID_BITS` and ``entropy`` :data:`TTL_ENTROPY`."""
    _require_code(code, IPV4_ID_BITS, "a wire code in an IPv4 header")
    _require_code(entropy, TTL_ENTROPY_BITS, "TTL entropy")
    ttl = TTL_HIGH_BIT | entropy << TTL_ID_BITS | code >> TOS_BITS
    return code & (1 << TOS_BITS) - 1, ttl


def ipv4_code(tos: int, ttl: int) -> int:
    """The wire code an IPv4 packet with this TOS byte and TTL carries (any TTL: its
    lowest bits are read); ValueError unless both are bytes."""
    _require_code(tos, TOS_BITS, "a TOS byte")
    _require_code(ttl, 8, "a TTL")
    return (ttl & (1 << TTL_ID_BITS) - 1) << TOS_BITS | tos


def tos_fields(tos: int) -> tuple[int, int]:
    """The (DSCP, ECN) header fields of TOS byte ``tos``: the upper six bits and the lower
    two, as a switch matches and writes them."""
    _require_code(tos, TOS_BITS, "a TOS byte")
    return tos >> ECN_BITS, tos & ((1 << ECN_BITS) - 1)


class InvalidId(ValueError):
    """A snapshot id or wire code that is not an ``int`` or is out of range."""


class OutOfWindow(InvalidId):
    """A wire id that no process within the snapshot window can have sent."""


def require_id(value: object, what: str = "snapshot id") -> int:
    """``value`` if it is a non-negative ``int`` (``bool`` is not); else :class:`InvalidId`."""
    if type(value) is not int:
        raise InvalidId(f"{what} must be an int, got {type(value).__name__} {value!r}")
    if value < 0:
        raise InvalidId(f"{what} must be non-negative, got {value}")
    return value


@dataclass(frozen=True)
class IdSpace:
    """The wire encoding of snapshot ids: ``bits`` header bits, ``window`` ids in flight.

    ``lead``: how far ahead of a gateway's id an id may be for the gateway to recognise it
    (its :meth:`ahead_wires`); the coordinator starts no id further ahead of a gateway's
    acknowledged one. None: the window.
    """

    bits: int = 6
    window: int = 16
    lead: int | None = None

    def __post_init__(self) -> None:
        if self.lead is None:
            object.__setattr__(self, "lead", self.window)
        for name in ("bits", "window", "lead"):
            if type(getattr(self, name)) is not int:
                value = getattr(self, name)
                raise InvalidId(f"id {name} must be an int, got {type(value).__name__} {value!r}")
        if not 2 <= self.bits <= 32:
            raise InvalidId(f"id bits must be in 2..32, got {self.bits}")
        if not 1 <= self.window or 2 * self.window + 1 > self.codes:
            raise InvalidId(
                f"window must be in 1..{(self.codes - 1) // 2} for {self.bits} bits, "
                f"got {self.window}"
            )
        if not 1 <= self.lead <= self.window:
            raise InvalidId(f"lead must be in 1..{self.window} (the window), got {self.lead}")

    @cached_property
    def codes(self) -> int:
        """Number of usable wire codes (code 0 is reserved for unmarked traffic)."""
        return (1 << self.bits) - 1

    def to_wire(self, full_id: int) -> int:
        """The wire code of a full id (never :data:`UNMARKED`)."""
        if type(full_id) is not int or full_id < 0:
            require_id(full_id)
        return full_id % self.codes + 1

    def from_wire(self, wire: int, reference: int) -> int | None:
        """The full id a wire code stands for, seen by a process at full id ``reference``.

        Returns ``None`` for unmarked traffic. Raises :class:`OutOfWindow` when
        no id within ``window`` of the reference either way has this code (an
        id further away aliases to one that is, see the module docstring), and
        :class:`InvalidId` for a code that does not fit in ``bits`` or a
        reference that is not a snapshot id.
        """
        if type(reference) is not int or reference < 0:
            require_id(reference, "reference id")
        if type(wire) is not int:
            raise InvalidId(f"wire id must be an int, got {type(wire).__name__} {wire!r}")
        if wire == UNMARKED:
            return None
        codes, window = self.codes, self.window
        if not 0 < wire <= codes:
            raise InvalidId(f"wire id {wire} does not fit in {self.bits} bits")
        ahead = (wire - 1 - reference) % codes
        if ahead <= window:
            return reference + ahead
        behind = codes - ahead
        if behind <= window and reference - behind >= 0:
            return reference - behind
        raise OutOfWindow(
            f"wire id {wire} is outside the window of {self.window} around id {reference}"
        )

    def ahead_wires(self, full_id: int) -> list[int]:
        """Wire codes of the ids newer than ``full_id`` that a gateway at it may still see
        (up to ``lead`` ahead).

        A gateway at ``full_id`` adopts these when in-group traffic carries them
        (optimistic marking); a switch can match them one rule each.
        """
        return [self.to_wire(full_id + step) for step in range(1, self.lead + 1)]


def ipv4_space(window: int = IPV4_WINDOW) -> IdSpace:
    """The emulation's id space: 10-bit codes in the TOS byte and two TTL bits, ``window``
    ids in flight, gateways recognising ids up to :data:`IPV4_LEAD` ahead (the window, if
    smaller)."""
    lead = IPV4_LEAD if type(window) is int and window > IPV4_LEAD else None
    return IdSpace(bits=IPV4_ID_BITS, window=window, lead=lead)
