"""Writing the app's messages to a gateway from the thread that decides them, not os-ken's.

os-ken writes every message through a queue that each connection's own send
thread empties, so an id update to |G| gateways woke |G| send threads, each
taking the interpreter lock in turn: at |G| = 8 they used 0.58-0.80 ms of the
controller's CPU per update with 44-55 voluntary context switches, a quarter
of the controller's CPU per update (docs/dataplane-history.md), and the flow-mods
reached the switch daemon one thread turn apart. :class:`DirectSends` writes
the app's messages to a gateway with one ``sendall`` in the caller's thread
(the app's, holding its lock), so one update's flow-mods leave back to back.

Two rules keep that sound:

* Bytes never interleave. A gateway's socket is wrapped when its features
  arrive, before the app sends it anything
  (:class:`controller.gateways.replies.GatewaySocket`): os-ken's own writes
  (echo requests) and the direct ones each hold one lock for their whole
  ``sendall``. Only os-ken's handshake messages were written before, and they
  are written by the time the barrier below comes back.
* Messages keep the order they were sent in. Until a gateway goes direct, the
  app's messages to it go through os-ken's queue; it goes direct at the reply
  of a barrier that left through the queue after every app message sent
  through it (the reply says the send thread wrote them all); if more were
  queued meanwhile, another barrier follows. From then on every app message
  to it goes direct.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger("beaver.controller.sending")


class DirectSends:
    """The app's sends to switches: direct for gateways that went direct, else os-ken's."""

    def __init__(self) -> None:
        self._direct: set[int] = set()
        """``id()`` of the datapaths (connections) written to directly."""
        self._queued: dict[int, int] = {}
        """Per adopted datapath not yet direct, the app's messages sent through the queue."""

    def adopt(self, datapath: Any) -> None:
        """A gateway's connection got its features (its socket is the reader's, whose
        ``sendall`` calls never overlap): it may go direct."""
        self._queued[id(datapath)] = 0

    def forget(self, datapath: Any) -> None:
        self._direct.discard(id(datapath))
        self._queued.pop(id(datapath), None)

    def is_direct(self, datapath: Any) -> bool:
        return id(datapath) in self._direct

    def send(self, datapath: Any, data: bytes) -> None:
        if id(datapath) not in self._direct:
            datapath.send(data)
            if id(datapath) in self._queued:
                self._queued[id(datapath)] += 1
            return
        try:
            datapath.socket.sendall(data)
        except OSError as error:  # the stream may be cut mid-message: end the connection
            log.warning("switch at %s: %s; closing the connection", datapath.address, error)
            datapath.close()

    def send_msg(self, datapath: Any, msg: Any) -> None:
        """An os-ken message (its xid set as os-ken's ``send_msg`` sets it)."""
        if msg.xid is None:
            datapath.set_xid(msg)
        msg.serialize()
        self.send(datapath, msg.buf)

    def go_direct(self, datapath: Any,
                  barrier: Callable[[Any, Callable[[float], None]], None]) -> None:
        """Make an adopted ``datapath`` direct once its queue is written: ``barrier(datapath,
        callback)`` sends a barrier through :meth:`send`, whose reply calls back."""
        key = id(datapath)
        if key not in self._queued:
            return
        mark = self._queued[key] + 1  # with the barrier itself
        barrier(datapath, lambda now: self._barrier_back(datapath, barrier, mark))

    def _barrier_back(self, datapath: Any,
                      barrier: Callable[[Any, Callable[[float], None]], None],
                      mark: int) -> None:
        key = id(datapath)
        if key not in self._queued:
            return  # forgotten meanwhile
        if self._queued[key] == mark:
            del self._queued[key]
            self._direct.add(key)
        else:
            self.go_direct(datapath, barrier)
