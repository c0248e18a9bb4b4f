"""What an in-group runtime counts, and the reasons it ignores a peer's datagram.

A :class:`hosts.runtime.Runtime` keeps one :class:`Counters`: running totals of
what it delivered, rejected, sent and retransmitted, the shortest external causal
chain it saw, and the datagrams it ignored split by reason. It reports them to the
coordinator in ``counters`` messages (the field names are the message's keys), and
the run's summary names the reasons: :data:`hosts.wire.REASONS` for a datagram that
is not a well-formed message, :data:`CHANNEL_REASONS` for an in-group peer's
datagram its reliable channel (:mod:`hosts.delivery`) cannot take.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Counters:
    """Running totals, reported to the coordinator in ``counters`` messages."""

    delivered: int = 0
    rejected: int = 0
    malformed: int = 0
    sent: int = 0
    markers_sent: int = 0
    chain_count: int = 0
    chain_min: float | None = None
    """The shortest external causal chain seen (seconds), from relayed ``chain_started``."""
    retransmissions: int = 0
    """In-group datagrams sent again because no acknowledgement came in time."""
    duplicates: int = 0
    """In-group datagrams that arrived again after their delivery (dropped)."""
    malformed_by: dict[str, int] = field(default_factory=dict)
    """``malformed`` split by reason: :data:`hosts.wire.REASONS` and :data:`CHANNEL_REASONS`."""
    service_ignored_by: dict[str, int] = field(default_factory=dict)
    """Delivered datagrams the service refused, by its reason (e.g. ``forged_credit``)."""


NO_SEQ, SEQ_WINDOW, BAD_ACK = "no_seq", "seq_window", "bad_ack"
CHANNEL_REASONS = (NO_SEQ, SEQ_WINDOW, BAD_ACK)
"""Why an in-group peer's datagram was ignored: no ``seq``; a ``seq`` too far ahead of the
channel; an ``ack`` without a valid ``through`` and ``held``."""
