"""Direct sends to a gateway: the app's messages leave through os-ken's queue until a
barrier says the queue is written, then from the caller's thread, never interleaved."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from controller.gateways.sending import DirectSends


class SlowSocket:
    """Writes each ``sendall`` in small pieces, yielding between them (as a full socket
    buffer makes a real ``sendall`` do)."""

    def __init__(self) -> None:
        self.written = bytearray()
        self.closed = False

    def sendall(self, data: bytes) -> None:
        for at in range(0, len(data), 3):
            self.written += data[at:at + 3]
            time.sleep(0)

    def fileno(self) -> int:
        return 7


class FakeDatapath:
    """os-ken's datapath as the app uses it: a queue its send thread writes, a socket."""

    def __init__(self) -> None:
        self.socket: Any = SlowSocket()
        self.queued: list[bytes] = []
        self.address = ("127.0.0.1", 1)
        self.closed = False

    def send(self, data: bytes) -> bool:
        self.queued.append(data)
        return True

    def close(self) -> None:
        self.closed = True


class Barriers:
    """Barriers sent through ``sends``; :meth:`answer` replies to the oldest."""

    def __init__(self, sends: DirectSends) -> None:
        self.sends = sends
        self.waiting: list[Callable[[float], None]] = []

    def __call__(self, datapath: Any, callback: Callable[[float], None]) -> None:
        self.sends.send(datapath, b"barrier")
        self.waiting.append(callback)

    def answer(self) -> None:
        self.waiting.pop(0)(0.0)


def test_a_gateway_goes_direct_once_a_barrier_says_its_queue_is_written() -> None:
    sends, datapath = DirectSends(), FakeDatapath()
    barriers = Barriers(sends)
    sends.adopt(datapath)
    sends.send(datapath, b"rules")
    sends.go_direct(datapath, barriers)
    sends.send(datapath, b"update 1")  # queued behind the barrier: not direct yet
    barriers.answer()
    assert not sends.is_direct(datapath)
    assert datapath.queued == [b"rules", b"barrier", b"update 1", b"barrier"]
    barriers.answer()  # nothing was queued after the second barrier
    assert sends.is_direct(datapath)
    sends.send(datapath, b"update 2")
    assert datapath.queued[-1] == b"barrier"
    assert bytes(datapath.socket.written) == b"update 2"


def test_a_connection_not_adopted_keeps_the_queue() -> None:
    sends, datapath = DirectSends(), FakeDatapath()
    sends.go_direct(datapath, Barriers(sends))
    sends.send(datapath, b"rule")
    assert datapath.queued == [b"rule"] and not sends.is_direct(datapath)


def test_a_forgotten_connection_does_not_go_direct() -> None:
    sends, datapath = DirectSends(), FakeDatapath()
    barriers = Barriers(sends)
    sends.adopt(datapath)
    sends.go_direct(datapath, barriers)
    sends.forget(datapath)
    barriers.answer()
    assert not sends.is_direct(datapath)


def test_a_failed_direct_write_ends_the_connection() -> None:
    sends, datapath = DirectSends(), FakeDatapath()
    barriers = Barriers(sends)
    sends.adopt(datapath)
    sends.go_direct(datapath, barriers)
    barriers.answer()

    def broken(data: bytes) -> None:
        raise BrokenPipeError("the switch went away")

    datapath.socket.sendall = broken
    sends.send(datapath, b"update")
    assert datapath.closed
