"""Reliable in-group delivery: the channel alone, and the runtime over loopback losing datagrams.

A lost datagram used to be lost for good: the money of a credit with it, and
every later snapshot stayed incomplete waiting for a message it had counted.
"""

from __future__ import annotations

import json
import socket

import pytest
from test_hosts_fakes import wait_until
from test_hosts_runtime import SPACE, Harness

from hosts import delivery, wire
from hosts.delivery import Channel


def test_a_channel_delivers_in_order_once_and_acknowledges_what_it_holds():
    channel: Channel[str] = Channel()
    assert channel.receive(2, "b") == [] and channel.ack() == {
        "kind": "ack", "through": 0, "held": [2]}
    assert channel.receive(1, "a") == ["a", "b"]
    assert channel.receive(2, "b again") is None, "a duplicate is never delivered"
    assert channel.ack()["through"] == 2
    with pytest.raises(delivery.OutOfWindow):
        channel.receive(2 + delivery.WINDOW + 1, "far ahead")


def test_a_channel_sends_again_until_acknowledged_with_backoff():
    channel: Channel[str] = Channel(retry=0.125, max_retry=0.25)
    for seq in (channel.next_seq(), channel.next_seq(), channel.next_seq()):
        channel.keep(seq, f"datagram {seq}".encode(), code=7, now=0.0)
    assert channel.due(0.1) == []
    assert channel.due(0.125) == [(b"datagram 1", 7), (b"datagram 2", 7), (b"datagram 3", 7)]
    channel.acknowledged(through=1, held=[3])
    assert channel.next_due() == 0.375, "the timer doubled"
    assert channel.due(0.375) == [(b"datagram 2", 7)]
    assert channel.next_due() == 0.625, "the timer stops doubling at max_retry"
    channel.acknowledged(through=2, held=[])
    assert channel.unacknowledged == 0 and channel.next_due() is None


@pytest.fixture
def beaver():
    harness = Harness("beaver")
    yield harness
    harness.close()


def _raw(harness: Harness, what: str) -> tuple[dict, int, int]:
    """The next datagram to peer b as it is on the wire: message, wire code, TTL (no ack sent)."""
    sock = harness.peer.sock
    wire.report_marks(sock)

    def one():
        harness.pump()
        try:
            payload, ancillary, _flags, _source = sock.recvmsg(wire.MAX_DATAGRAM, 256)
        except BlockingIOError:
            return None
        message = json.loads(payload)
        if message["kind"] == delivery.ACK:
            return None
        found = {kind: data[0] for level, kind, data in ancillary if level == socket.IPPROTO_IP}
        return message, wire.marked_code(ancillary), found[socket.IP_TTL]

    return wait_until(one, what, lambda: None)


def test_a_lost_datagram_is_sent_again_with_its_first_stamp_and_delivered_once(beaver):
    beaver.peer.send({"kind": "data", "n": 1}, beaver.address, code=SPACE.to_wire(0))
    first, code, ttl = _raw(beaver, "the echo")
    beaver.notify(3)  # the node moves on; the echo in flight still belongs to id 0
    again, code_again, ttl_again = _raw(beaver, "the echo sent again (its first one was lost)")
    assert again == first and code_again == code == SPACE.to_wire(0)
    assert ttl in range(128, 256) and ttl_again in range(128, 256)
    assert beaver.runtime.counters.retransmissions >= 1
    assert beaver.runtime.node.current == 3
    beaver.peer.send(beaver.peer.channel.ack() | {"through": first["seq"]}, beaver.address)
    beaver.wait(lambda: beaver.runtime.channels["b"].unacknowledged == 0, "the ack")


def test_a_repeated_datagram_is_delivered_once_and_one_ahead_waits_for_the_gap(beaver):
    peer = beaver.peer
    peer.ingroup = False  # send by hand, with chosen seqs
    peer.send({"kind": "data", "n": 2, "seq": 2}, beaver.address, code=SPACE.to_wire(0))
    peer.send({"kind": "data", "n": 2, "seq": 2}, beaver.address, code=SPACE.to_wire(0))
    beaver.wait(lambda: beaver.runtime.counters.duplicates == 1, "the duplicate")
    assert beaver.service.delivered == [], "seq 2 waits for seq 1"
    peer.send({"kind": "data", "n": 1, "seq": 1}, beaver.address, code=SPACE.to_wire(0))
    beaver.wait(lambda: beaver.service.delivered == [1, 2], "both, in order")
    peer.send({"kind": "data", "n": 1, "seq": 1}, beaver.address, code=SPACE.to_wire(0))
    beaver.wait(lambda: beaver.runtime.counters.duplicates == 2, "the late duplicate")
    assert beaver.service.delivered == [1, 2]
    peer.send({"kind": "data", "n": 3}, beaver.address, code=SPACE.to_wire(0))
    beaver.wait(lambda: beaver.runtime.counters.malformed_by.get("no_seq"), "no seq, counted")
