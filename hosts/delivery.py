"""Reliable in-group delivery over UDP: sequence numbers, acknowledgements, retransmission.

UDP loses datagrams (queues overflow; ``beaver run --data-loss`` drops a
share of them on purpose). Between in-group nodes a lost credit would lose
money, and a message a snapshot counted as sent but that never arrives keeps
the snapshot incomplete for good. So every runtime keeps one
:class:`Channel` per in-group peer:

* sending: each datagram to the peer (the service's, and Chandy-Lamport
  markers) takes the next ``seq`` (from 1) and is kept, with the wire code it was
  stamped with, until the peer acknowledges it; until then it is sent again
  every ``retry`` seconds (doubling up to ``max_retry``), the same bytes with
  the same wire code. A retransmission keeps the snapshot id it was first sent
  with: the protocol core counted the message once, when it was first sent;
* receiving: datagrams are delivered in ``seq`` order and each once. A
  duplicate is dropped (and acknowledged again); one beyond a gap is held
  until the gap fills (at most ``window`` ahead; further is refused). The
  core therefore sees each message once, at its delivery, with its original
  stamp, and the channel state it records is exact; FIFO order per channel
  is what Chandy-Lamport's markers assume;
* each sequenced datagram received is answered with an ``ack``:
  ``{through, held}``, the highest ``seq`` delivered in order and up to
  :data:`MAX_HELD` seqs held beyond it (so those are not sent again).

``join`` and ``ack`` datagrams are not sequenced. Pure: the runtime passes
time in and does the sending.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

ACK = "ack"
"""The kind of acknowledgement datagrams."""
SEQ = "seq"
"""The field carrying a datagram's sequence number on its channel."""
RETRY = 0.05
"""Seconds before a datagram not acknowledged is sent again (doubling each time)."""
MAX_RETRY = 1.0
WINDOW = 4096
"""How far beyond the last in-order datagram a receiver holds datagrams."""
MAX_HELD = 64
"""Held seqs listed in one ack."""

_Item = TypeVar("_Item")


class OutOfWindow(ValueError):
    """A ``seq`` further ahead than the receiver holds datagrams."""


@dataclass
class _Unacked:
    payload: bytes
    code: int
    due: float
    retry: float


def ack_fields(message: dict[str, Any]) -> tuple[int, list[int]] | None:
    """(through, held) of a well-formed ``ack`` datagram, or None."""
    through, held = message.get("through"), message.get("held", [])
    if type(through) is not int or through < 0 or not isinstance(held, list) \
            or len(held) > MAX_HELD or not all(type(seq) is int for seq in held):
        return None
    return through, held


def seq_of(message: dict[str, Any]) -> int | None:
    """The sequence number of a sequenced datagram, or None."""
    seq = message.get(SEQ)
    return seq if type(seq) is int and seq >= 1 else None


class Channel(Generic[_Item]):
    """Both directions of one node's traffic with one in-group peer."""

    def __init__(self, retry: float = RETRY, max_retry: float = MAX_RETRY,
                 window: int = WINDOW):
        self.retry = retry
        self.max_retry = max_retry
        self.window = window
        self._next_seq = 1
        self._unacked: dict[int, _Unacked] = {}
        self._delivered = 0
        self._held: dict[int, _Item] = {}

    # -- sending ---------------------------------------------------------------------------

    def next_seq(self) -> int:
        seq, self._next_seq = self._next_seq, self._next_seq + 1
        return seq

    def keep(self, seq: int, payload: bytes, code: int, now: float) -> None:
        """Remember a datagram just sent, to send again until it is acknowledged."""
        self._unacked[seq] = _Unacked(payload, code, now + self.retry, self.retry)

    def acknowledged(self, through: int, held: Iterable[int]) -> None:
        for seq in [seq for seq in self._unacked if seq <= through]:
            del self._unacked[seq]
        for seq in held:
            self._unacked.pop(seq, None)

    def due(self, now: float) -> list[tuple[bytes, int]]:
        """The (payload, wire code) of every datagram to send again now; their timers restart."""
        resend = []
        for unacked in self._unacked.values():
            if unacked.due <= now:
                unacked.retry = min(unacked.retry * 2, self.max_retry)
                unacked.due = now + unacked.retry
                resend.append((unacked.payload, unacked.code))
        return resend

    def next_due(self) -> float | None:
        return min((unacked.due for unacked in self._unacked.values()), default=None)

    @property
    def unacknowledged(self) -> int:
        return len(self._unacked)

    # -- receiving -------------------------------------------------------------------------

    def receive(self, seq: int, item: _Item) -> list[_Item] | None:
        """What becomes deliverable now that ``seq`` arrived, in order; None: a duplicate.

        :class:`OutOfWindow` if ``seq`` is more than ``window`` ahead.
        """
        if seq <= self._delivered or seq in self._held:
            return None
        if seq > self._delivered + self.window:
            raise OutOfWindow(f"seq {seq} is more than {self.window} beyond {self._delivered}")
        self._held[seq] = item
        ready = []
        while self._delivered + 1 in self._held:
            self._delivered += 1
            ready.append(self._held.pop(self._delivered))
        return ready

    def ack(self) -> dict[str, Any]:
        """The acknowledgement of everything received so far."""
        return {"kind": ACK, "through": self._delivered, "held": sorted(self._held)[:MAX_HELD]}
