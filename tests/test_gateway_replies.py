"""The reader of the gateways' connections: awaited barrier replies are handled on its one
thread, everything else reaches os-ken in order, and a connection that ends, breaks or
cannot be framed ends for os-ken as a closed socket does."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from os_ken.ofproto import ofproto_v1_3

from controller.gateways.openflow import HEADER
from controller.gateways.replies import GatewayReader, GatewaySocket
from tests.test_gateway_sending import SlowSocket

WAIT = 5.0


def message(kind: int, xid: int, body: bytes = b"") -> bytes:
    return HEADER.pack(ofproto_v1_3.OFP_VERSION, kind, HEADER.size + len(body), xid) + body


class Datapath:
    """What the reader uses of os-ken's datapath: its socket and address."""

    def __init__(self, connection: socket.socket) -> None:
        self.socket: Any = connection
        self.address = ("127.0.0.1", 1)


class Awaited:
    """The app's side: the barrier xids it awaits, and the replies it got."""

    def __init__(self, xids: set[int]) -> None:
        self.xids = xids
        self.got: list[tuple[Any, int]] = []
        self.arrived = threading.Event()

    def __call__(self, datapath: Any, xid: int, now: float) -> bool:
        if xid not in self.xids:
            return False
        self.xids.discard(xid)
        self.got.append((datapath, xid))
        self.arrived.set()
        return True


@pytest.fixture
def reader() -> Iterator[tuple[GatewayReader, Awaited]]:
    awaited = Awaited({7, 8})
    reader = GatewayReader(awaited)
    reader.start()
    yield reader, awaited
    reader.stop()


def adopted(reader: GatewayReader) -> tuple[Datapath, socket.socket]:
    """A datapath whose connection the reader took over, and the switch's end of it."""
    ours, switch = socket.socketpair()
    ours.settimeout(0.05)  # os-ken's read timeout, short for the test
    datapath = Datapath(ours)
    reader.adopt(datapath)
    assert isinstance(datapath.socket, GatewaySocket)
    return datapath, switch


def read_all(connection: GatewaySocket, size: int) -> bytes:
    """What os-ken's loop would read: up to ``size`` bytes, reading again on timeouts,
    until the connection ends."""
    data, deadline = b"", time.monotonic() + WAIT
    while len(data) < size and time.monotonic() < deadline:
        try:
            chunk = connection.recv(8)  # os-ken reads a header at a time
        except TimeoutError:
            continue
        if not chunk:
            break
        data += chunk
    return data


def test_an_awaited_barrier_reply_is_handled_and_the_rest_reaches_os_ken_in_order(
        reader: tuple[GatewayReader, Awaited]) -> None:
    gateways, awaited = reader
    datapath, switch = adopted(gateways)
    packet_in = message(ofproto_v1_3.OFPT_PACKET_IN, 3, b"x" * 20)
    echo = message(ofproto_v1_3.OFPT_ECHO_REPLY, 4)
    unawaited = message(ofproto_v1_3.OFPT_BARRIER_REPLY, 99)
    data = packet_in + message(ofproto_v1_3.OFPT_BARRIER_REPLY, 7) + echo + unawaited
    for at in range(0, len(data), 5):  # in pieces, as a stream may come
        switch.sendall(data[at:at + 5])
    assert awaited.arrived.wait(WAIT)
    assert awaited.got == [(datapath, 7)]
    assert read_all(datapath.socket, len(packet_in + echo + unawaited)) == \
        packet_in + echo + unawaited
    switch.close()


def test_a_closed_connection_reads_as_closed_after_what_came_before(
        reader: tuple[GatewayReader, Awaited]) -> None:
    gateways, _ = reader
    datapath, switch = adopted(gateways)
    echo = message(ofproto_v1_3.OFPT_ECHO_REQUEST, 5, b"ping")
    switch.sendall(echo)
    switch.close()
    assert read_all(datapath.socket, len(echo)) == echo
    assert datapath.socket.recv(8) == b""


def test_a_message_shorter_than_a_header_ends_the_connection(
        reader: tuple[GatewayReader, Awaited]) -> None:
    gateways, awaited = reader
    datapath, switch = adopted(gateways)
    switch.sendall(HEADER.pack(ofproto_v1_3.OFP_VERSION, ofproto_v1_3.OFPT_BARRIER_REPLY, 4, 8))
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        try:
            assert datapath.socket.recv(8) == b""
            break
        except TimeoutError:
            continue
    else:
        pytest.fail("the connection did not end")
    assert awaited.got == []
    switch.close()


def test_reads_time_out_as_the_socket_does_while_nothing_came(
        reader: tuple[GatewayReader, Awaited]) -> None:
    gateways, _ = reader
    datapath, switch = adopted(gateways)
    with pytest.raises(TimeoutError):
        datapath.socket.recv(8)
    switch.close()


def test_closing_takes_the_connection_off_the_reader_and_stopping_ends_the_rest() -> None:
    gateways = GatewayReader(Awaited(set()))
    gateways.start()
    closed, switch = adopted(gateways)
    kept, other_switch = adopted(gateways)
    closed.socket.close()
    assert closed.socket.wrapped.fileno() == -1
    gateways.stop()
    assert kept.socket.recv(8) == b""  # os-ken's loop ends, as for a closed socket
    assert kept.socket.fileno() != -1  # os-ken closes it, as always
    kept.socket.close()
    switch.close()
    other_switch.close()


def test_concurrent_sends_on_a_gateway_socket_never_interleave() -> None:
    raw = SlowSocket()
    serial = GatewaySocket(raw, GatewayReader(Awaited(set())))  # type: ignore[arg-type]
    messages = [bytes([65 + n]) * 30 for n in range(8)]
    threads = [threading.Thread(target=lambda m=m: [serial.sendall(m) for _ in range(20)])
               for m in messages]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    written = bytes(raw.written)
    pieces = [written[at:at + 30] for at in range(0, len(written), 30)]
    assert sorted(pieces) == sorted(messages * 20)
    assert serial.fileno() == 7  # everything else is the socket's


def test_a_failing_handler_ends_its_connection_and_the_reader_goes_on() -> None:
    failing = True

    def on_barrier(datapath: Any, xid: int, now: float) -> bool:
        if failing:
            raise RuntimeError("a bug in the app")
        return False

    gateways = GatewayReader(on_barrier)
    gateways.start()
    try:
        broken, switch = adopted(gateways)
        switch.sendall(message(ofproto_v1_3.OFPT_BARRIER_REPLY, 1))
        assert read_all(broken.socket, 1) == b""  # ended for os-ken
        failing = False
        kept, other_switch = adopted(gateways)
        echo = message(ofproto_v1_3.OFPT_ECHO_REPLY, 2)
        other_switch.sendall(echo)
        assert read_all(kept.socket, len(echo)) == echo
    finally:
        gateways.stop()
    switch.close()
    other_switch.close()


def test_only_a_switchs_current_connection_answers_its_barriers() -> None:
    from controller.gateways.app import GatewayApp

    current, refused = SimpleNamespace(id=0x301), SimpleNamespace(id=0x301)
    answered: list[float] = []
    app = SimpleNamespace(lock=threading.RLock(), names={0x301: "gw1"},
                          datapaths={"gw1": current}, barriers={(0x301, 7): answered.append})
    app.changed = threading.Condition(app.lock)
    assert not GatewayApp._awaited_barrier(app, refused, 7, 1.0)  # type: ignore[arg-type]
    assert answered == [] and (0x301, 7) in app.barriers
    assert GatewayApp._awaited_barrier(app, current, 7, 2.0)  # type: ignore[arg-type]
    assert answered == [2.0]
    assert not GatewayApp._awaited_barrier(app, current, 7, 3.0)  # type: ignore[arg-type]
