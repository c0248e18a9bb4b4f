"""Making a gateway's new rules hold in its datapath before the update counts as acknowledged.

A barrier reply from Open vSwitch says that the flow-mods before it are in
the OpenFlow tables, not that packets see them: the userspace datapath keeps
forwarding with its cached datapath flows until a revalidator re-translates
them, and the revalidator starts at most once every 5 ms. Measured here,
packets sent after the barrier reply still carried the old id in 30-90 % of
updates (docs/dataplane.md). So after the barrier of an id update, the
controller makes the rules hold over the daemon's unixctl socket (one
persistent connection speaking the JSON-RPC that ``ovs-appctl`` speaks), in
one of two ways (``SYNC_MODES``):

* ``purge`` (the default): empty the gateway's datapath flow cache
  (``revalidator/purge``: the datapath flows and the revalidators' records
  of them), so the next packet misses and is translated with the new rules;
  ``dpctl/del-flows`` leaves the records, and every packet then took the
  slow path until the next revalidation.
* ``revalidate``: wait until a revalidation pass that started
  after the update has ended. That pass re-translates every cached flow of
  the gateway with the new rules and rewrites those whose actions changed;
  the flows stay cached, so no packet goes back through an upcall. OVS's
  ``revalidator/wait`` answers when the pass in progress, or else the next
  one, ends (it reads the pass counter when the command arrives and answers
  when it moves), and a pass in progress may have started before the
  flow-mod: so the applier waits twice, and the second answer is for a pass
  that started after the first ended. The gateways' daemons then run a pass
  at least every 10 ms (``testbed.switchd.FREQUENT_REVALIDATION``).

The gateway runs on a switch daemon of its own (:mod:`testbed.switchd`), so
either touches only that gateway's few cached flows.

One :class:`DatapathApplier` per gateway does this on its own thread, so
gateways finish their updates independently and no lock is held while a
daemon answers.
"""

from __future__ import annotations

import json
import logging
import queue
import socket
import threading
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger("beaver.controller.datapath")
UNIXCTL_TIMEOUT = 5.0
SYNC_MODES = ("purge", "revalidate")
"""How an applier makes new rules hold, the default first: empty the flow cache, or wait
for a revalidation pass that started after them (the cached flows stay and are
re-checked; measured slower here, see docs/dataplane.md)."""


class UnixctlError(RuntimeError):
    """The switch daemon refused a command or could not be reached."""


class Unixctl:
    """A JSON-RPC connection to one daemon's unixctl socket (reconnects when it breaks)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._socket: socket.socket | None = None
        self._buffer = ""
        self._next_id = 0
        self._decoder = json.JSONDecoder()

    def call(self, method: str, *params: str) -> str:
        try:
            return self._call(method, list(params))
        except OSError as error:
            self.close()
            raise UnixctlError(f"{self.path}: {error}") from None

    def _call(self, method: str, params: list[str]) -> str:
        if self._socket is None:
            self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self._socket.settimeout(UNIXCTL_TIMEOUT)
            self._socket.connect(str(self.path))
            self._buffer = ""
        self._next_id += 1
        request = {"method": method, "params": params, "id": self._next_id}
        self._socket.sendall(json.dumps(request).encode())
        while True:
            try:
                reply, end = self._decoder.raw_decode(self._buffer.lstrip())
            except ValueError:
                reply = None
            if reply is None:
                chunk = self._socket.recv(65536)
                if not chunk:
                    raise OSError("the daemon closed the connection")
                self._buffer += chunk.decode()
                continue
            self._buffer = self._buffer.lstrip()[end:]
            if reply.get("id") != self._next_id:
                continue  # an answer to an earlier request that timed out
            if reply.get("error") is not None:
                raise UnixctlError(f"{method}: {str(reply['error']).strip()}")
            return str(reply.get("result") or "")

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None


class DatapathApplier:
    """One gateway's worker: make its new rules hold in its datapath, then run the callback."""

    def __init__(self, gateway: str, control_socket: Path, mode: str = SYNC_MODES[0]) -> None:
        if mode not in SYNC_MODES:
            raise ValueError(f"unknown datapath sync mode {mode!r}; one of {SYNC_MODES}")
        self.gateway = gateway
        self.mode = mode
        self.unixctl = Unixctl(control_socket)
        self._work: queue.SimpleQueue[Callable[[str | None], None] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name=f"apply-{gateway}")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._work.put(None)

    def after_sync(self, done: Callable[[str | None], None]) -> None:
        """Make the rules hold (:meth:`sync`), then ``done(None)``, or ``done(reason)``."""
        self._work.put(done)

    def sync(self) -> None:
        """Return once packets see the rules that were in the tables when this was called."""
        if self.mode == "purge":
            self.unixctl.call("revalidator/purge")
            return
        # ``revalidator/wait`` answers when the pass in progress (or the next) ends, and that
        # pass may have started before the flow-mod; the pass after it cannot have.
        self.unixctl.call("revalidator/wait")
        self.unixctl.call("revalidator/wait")

    def _run(self) -> None:
        while True:
            done = self._work.get()
            if done is None:
                self.unixctl.close()
                return
            # Requests that queued up meanwhile are all served by one sync.
            batch = [done]
            while True:
                try:
                    more = self._work.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._work.put(None)
                    break
                batch.append(more)
            try:
                self.sync()
                failure = None
            except UnixctlError as error:
                failure = f"datapath sync failed: {error}"
                log.error("gateway %s: %s", self.gateway, failure)
            for callback in batch:
                callback(failure)
