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

In an IPv4 header (the emulation) the code is the whole TOS byte,
:data:`TOS_BITS` = 8 bits: the six DSCP bits and the two ECN bits below
them (:func:`code_to_tos`, :func:`tos_to_code`; :func:`tos_fields` splits
it into the DSCP and ECN fields a switch matches and writes). The
emulation's space is :func:`tos_space`, by default with a window of
:data:`TOS_WINDOW`. The paper's prototype also takes six TTL bits (14
bits, a window of up to 8191); the emulation cannot: the TTL of in-group
datagrams carries the per-datagram entropy the fabric's loss rules drop by
(:data:`topologies.addressing.INGROUP_TTLS`). The simulator keeps the
:class:`IdSpace` defaults (6 bits, a window of 16).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

UNMARKED = 0
"""The wire code of traffic that carries no snapshot id."""
TOS_BITS = 8
"""Bits of a wire code in an IPv4 header: the whole TOS byte (DSCP and ECN)."""
ECN_BITS = 2
"""The low bits of the TOS byte, its ECN field; the DSCP field is the bits above them."""
TOS_WINDOW = 64
"""The emulation's default window: 4 times the 16 the 6-bit DSCP allowed, so 4 times the
snapshots can be in flight, while half the 255 codes (126) still decode to no id within
the window of any receiver, as with 6 bits and 16 (30 of 63): a corrupt mark is refused
about as often as before. The largest window 8 bits allow is 127 (every code decodes)."""


def code_to_tos(code: int) -> int:
    """The TOS byte carrying wire code ``code`` (DSCP and ECN bits); ValueError unless it
    fits :data:`TOS_BITS`."""
    if type(code) is not int or not 0 <= code < 1 << TOS_BITS:
        raise ValueError(f"a wire code in the TOS byte is 0..{(1 << TOS_BITS) - 1}, got {code!r}")
    return code


def tos_to_code(tos: int) -> int:
    """The wire code a TOS byte carries (all eight bits: DSCP and ECN)."""
    return code_to_tos(tos)


def tos_fields(code: int) -> tuple[int, int]:
    """The (DSCP, ECN) header fields of the TOS byte carrying ``code``: the upper six bits
    and the lower two, as a switch matches and writes them."""
    tos = code_to_tos(code)
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
    """The wire encoding of snapshot ids: ``bits`` header bits, ``window`` ids in flight."""

    bits: int = 6
    window: int = 16

    def __post_init__(self) -> None:
        for name in ("bits", "window"):
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
        """Wire codes of the ids newer than ``full_id`` that a process may still see.

        A gateway at ``full_id`` adopts these when in-group traffic carries them
        (optimistic marking); a switch can match them one rule each.
        """
        return [self.to_wire(full_id + step) for step in range(1, self.window + 1)]


def tos_space(window: int = TOS_WINDOW) -> IdSpace:
    """The emulation's id space: codes in the TOS byte, ``window`` ids in flight."""
    return IdSpace(bits=TOS_BITS, window=window)
