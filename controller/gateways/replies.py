"""Reading every gateway's OpenFlow connection on one thread: barrier replies in place.

os-ken reads each connection on a thread of its own, in two ``recv`` calls
per message (header, then body), parses each message into an object and an
event and runs the handlers: an id update's barrier replies woke |G|
threads, each taking the interpreter lock in turn. :class:`GatewayReader`
reads every gateway's connection instead, with one selector on one thread
(``gateway-replies``): it frames what arrives (:func:`~controller.gateways.
openflow.take_messages`), hands each barrier reply whose xid the app awaits
to it (``on_barrier``) without parsing it, and passes every other message, in
the order it came, to os-ken, whose thread for the connection now reads from
the :class:`GatewaySocket` the reader put in place of the socket. So os-ken
still does everything else (handshake, echo, packet-in, port status, errors,
stats replies); only the barrier replies the app awaits skip it.

The reader takes a connection over when its features reply arrives, in
os-ken's own receiving thread between two of its reads (:meth:`GatewayReader.
adopt` is a handler of os-ken's ``ofp_event`` brick, which that thread runs),
so no byte is read by both. A connection the switch closes (or that fails,
or sends a message shorter than a header) ends for os-ken as a closed socket
does: its reads return nothing, and it closes the connection as it always
did; closing the :class:`GatewaySocket` takes the connection off the reader
first.

Writes stay as :mod:`controller.gateways.sending` makes them: every
``sendall`` on a :class:`GatewaySocket` holds one lock for its whole length,
os-ken's and the app's direct ones alike.
"""

from __future__ import annotations

import logging
import selectors
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from os_ken.ofproto import ofproto_v1_3

from controller.gateways.openflow import take_messages

log = logging.getLogger("beaver.controller.replies")
READ_SIZE = 65536
OnBarrier = Callable[[Any, int, float], bool]
"""``on_barrier(datapath, xid, time)``: True if the app awaited that barrier reply (it is
then handled); False passes it to os-ken."""


class GatewaySocket:
    """A gateway connection's socket as os-ken and the app use it once the reader took it
    over: ``sendall`` calls never overlap, ``recv`` returns what the reader passed on, and
    the rest is the socket's."""

    def __init__(self, wrapped: socket.socket, reader: GatewayReader) -> None:
        self._wrapped = wrapped
        self._reader = reader
        self._sending = threading.Lock()
        self._arrived = threading.Condition()
        self._passed = bytearray()
        self._ended = False

    @property
    def wrapped(self) -> socket.socket:
        return self._wrapped

    def sendall(self, data: bytes) -> None:
        with self._sending:
            self._wrapped.sendall(data)

    def recv(self, size: int) -> bytes:
        """Up to ``size`` bytes the reader passed on; b"" once the connection ended;
        ``socket.timeout`` after the socket's timeout without any (os-ken's loop then looks
        at its state and reads again, as with its own socket)."""
        with self._arrived:
            if not self._passed and not self._ended:
                self._arrived.wait(self._wrapped.gettimeout())
            if self._passed:
                data = bytes(self._passed[:size])
                del self._passed[:size]
                return data
            if self._ended:
                return b""
        raise TimeoutError("timed out")

    def pass_on(self, data: bytes) -> None:
        with self._arrived:
            self._passed += data
            self._arrived.notify()

    def end(self) -> None:
        """Nothing more will come: os-ken reads what is left, then b""."""
        with self._arrived:
            self._ended = True
            self._arrived.notify()

    def close(self) -> None:
        self._reader.forget(self)
        self._wrapped.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._wrapped, name)


class GatewayReader:
    """One thread reading the connections it adopted (see the module)."""

    def __init__(self, on_barrier: OnBarrier) -> None:
        self._on_barrier = on_barrier
        self._selector = selectors.DefaultSelector()
        self._wake, self._waker = socket.socketpair()
        self._selector.register(self._wake, selectors.EVENT_READ, None)
        self._lock = threading.Lock()
        """Held while a connection is read, taken on or off the selector."""
        self._stopped = False
        self._thread = threading.Thread(target=self._run, daemon=True, name="gateway-replies")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """End the thread, end every connection still adopted for os-ken, close the
        selector."""
        with self._lock:
            self._stopped = True
            self._waker.send(b"\0")
        if self._thread.is_alive():
            self._thread.join()
        with self._lock:
            for key in list(self._selector.get_map().values()):
                if key.data is not None:
                    self._selector.unregister(key.fileobj)
                    key.data[1].end()
            self._selector.close()
        self._wake.close()
        self._waker.close()

    def adopt(self, datapath: Any) -> None:
        """Read ``datapath``'s connection from now on (call from os-ken's thread reading it,
        between two of its reads)."""
        connection = GatewaySocket(datapath.socket, self)
        with self._lock:
            if self._stopped:
                return
            self._selector.register(connection.wrapped, selectors.EVENT_READ,
                                    (datapath, connection, bytearray()))
        datapath.socket = connection

    def forget(self, connection: GatewaySocket) -> None:
        """Stop reading ``connection`` (before its socket closes)."""
        with self._lock:
            if not self._stopped and connection.wrapped in self._selector.get_map():
                self._selector.unregister(connection.wrapped)

    def _run(self) -> None:
        while True:
            for key, _ in self._selector.select():
                if key.data is None:
                    self._wake.recv(64)
                    if self._stopped:
                        return
                    continue
                datapath, connection, _ = key.data
                try:
                    self._read(*key.data)
                except Exception:  # the app's handling failed: end this connection only
                    log.exception("switch at %s: handling what it sent failed; closing the "
                                  "connection", datapath.address)
                    self.forget(connection)
                    connection.end()

    def _read(self, datapath: Any, connection: GatewaySocket, buffer: bytearray) -> None:
        with self._lock:
            if connection.wrapped not in self._selector.get_map():
                return  # forgotten since the selector said it was readable
            try:
                chunk = connection.wrapped.recv(READ_SIZE)
            except (BlockingIOError, InterruptedError, TimeoutError):
                return
            except OSError as error:
                log.warning("switch at %s: %s; closing the connection", datapath.address, error)
                chunk = b""
            if not chunk:
                self._selector.unregister(connection.wrapped)
                connection.end()
                return
            buffer += chunk
            try:
                messages = take_messages(buffer)
            except ValueError as error:
                log.warning("switch at %s sent %s; closing the connection", datapath.address,
                            error)
                self._selector.unregister(connection.wrapped)
                connection.end()
                return
        now = time.monotonic()
        passed = bytearray()
        for kind, xid, message in messages:
            if kind == ofproto_v1_3.OFPT_BARRIER_REPLY and self._on_barrier(datapath, xid, now):
                continue
            passed += message
        if passed:
            connection.pass_on(bytes(passed))
