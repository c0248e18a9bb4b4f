"""Making a gateway's new rules hold in its datapath before the update counts as acknowledged.

A barrier reply from Open vSwitch says that the flow-mods before it are in
the OpenFlow tables, not that packets see them: the userspace datapath keeps
forwarding with its cached datapath flows until a revalidator re-translates
them. Measured here, packets sent after the barrier reply still carried the
old id in 30-90 % of updates (docs/dataplane.md). So after the barrier of an
id update, the controller makes sure the datapath follows the new rules,
over the daemon's unixctl socket (one persistent connection speaking the
JSON-RPC that ``ovs-appctl`` speaks), in one of two ways (``SYNC_MODES``):

* ``purge`` (the default): empty the gateway's datapath flow cache
  (``revalidator/purge``: the datapath flows and the revalidators' records
  of them), so the next packet misses and is translated with the new rules;
  ``dpctl/del-flows`` leaves the records, and every packet then took the
  slow path until the next revalidation. Every cached flow goes back
  through an upcall after every update.
* ``watch``: read the gateway's datapath flows (``dpctl/dump-flows``)
  until every flow that went through the stamp rule carries the update's
  mark. The stamp rule marks each packet it stamps with the snapshot id in
  ``pkt_mark`` (:func:`~controller.gateways.stamping.stamp_mark`), a field
  no packet arrives with and no port sends out, so every cached flow of the
  stamp path shows the id it stamps in its actions (``set(skb_mark(..))``),
  whatever header bits carry the id on the wire. The flow-mod itself makes
  the daemon's revalidator re-translate its cached flows in place (a pass
  starts at most 5 ms after the previous one started), so no packet goes
  back through an upcall. What the dump shows is what packets get, so the
  check is sound by construction. Should the flows not follow within
  ``WATCH_TIMEOUT``, the applier purges them. Measured here, this costs
  user traffic more throughput than purging, although no flow misses
  (docs/dataplane.md), so it is not the default.

Waiting for revalidation passes with ``revalidator/wait`` was tried and
dropped: that command only sees passes that end after it arrives, the pass
the flow-mod starts has often ended by then, and the next one comes only
after ``min(other_config:max-idle, 500 ms)`` (Open vSwitch 3.1 does not
apply ``max-revalidator`` to that timer).

The gateways share one switch daemon by default (:mod:`testbed.switchd`),
so a purge empties every gateway's few cached flows at once; with a daemon
per gateway, either mode touches only that gateway's flows.

One :class:`DatapathApplier` per daemon (:func:`appliers_by_gateway`) does this on its
own thread, so daemons finish their updates independently and no lock is
held while a daemon answers. The gateways of a shared daemon are served
by one sync per update: each barrier whose reply will ask for a sync takes
a ticket when it is sent (:meth:`DatapathApplier.expect`), and when the
first reply asks for a sync, the applier waits until every barrier out at
that moment came back (or ``SIBLING_WAIT`` passed; barriers sent later are
not waited for). So an update's parts on one daemon, sent together, get
one purge after the last of their barriers instead of one after the first
and another for the rest (measured: 2.2 purges per update at |G| = 8
before, docs/dataplane.md), and pipelined updates whose barriers were out
together share it. Waiting longer is always sound: a sync serves every
barrier that came back before it started.
"""

from __future__ import annotations

import json
import logging
import re
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

from beaver.ids import OutOfWindow
from controller.gateways.stamping import MARK_SPACE

log = logging.getLogger("beaver.controller.datapath")
UNIXCTL_TIMEOUT = 5.0
Callback = Callable[[str | None], None]
SYNC_MODES = ("purge", "watch")
"""How an applier makes new rules hold, the default first: empty the flow cache, or watch
the cached flows follow them (see docs/dataplane.md for both, measured)."""
WATCH_TIMEOUT = 0.2
"""Seconds the ``watch`` mode waits for the flows to follow before it purges them."""
WATCH_FIRST_PAUSE = 0.0005
WATCH_LONGEST_PAUSE = 0.004
"""Seconds between two reads of the flows: doubling from the first, up to the longest."""
SIBLING_WAIT = 0.02
"""Seconds a sync waits at most for barriers sent before the newest that came back (a
barrier later than this, or one whose connection is gone, gets a sync of its own)."""
FALLBACK_PURGE_LOG = "purging them"
"""What the controller logs when a ``watch`` sync falls back to purging."""
FLOW_MARK = re.compile(r"skb_mark\((0x[0-9a-fA-F]+|[0-9]+)")


def stale_flows(dump: str, snapshot_id: int) -> list[str]:
    """The flows of a ``dpctl/dump-flows`` output that mark packets with an id older than
    ``snapshot_id`` (or with a mark that is no id near it)."""
    stale = []
    for line in dump.splitlines():
        _, separator, actions = line.partition(" actions:")
        marks = [int(found, 0) for found in FLOW_MARK.findall(actions)] if separator else []
        if any(not _holds(mark, snapshot_id) for mark in marks):
            stale.append(line)
    return stale


def _holds(mark: int, snapshot_id: int) -> bool:
    """Whether a flow marking ``mark`` stamps ``snapshot_id`` or a later id."""
    try:
        marked = MARK_SPACE.from_wire(mark, snapshot_id)
    except OutOfWindow:
        return False
    return marked is not None and marked >= snapshot_id


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


def check_sync(mode: str, shared_daemon: bool) -> None:
    """ValueError unless ``mode`` is a sync that works with the gateways' daemons."""
    if mode not in SYNC_MODES:
        raise ValueError(f"unknown datapath sync mode {mode!r}; one of {', '.join(SYNC_MODES)}")
    if mode == "watch" and shared_daemon:
        raise ValueError("the watch sync needs a switch daemon per gateway: a shared daemon's "
                         "flow dump does not say which gateway a flow is of")


def appliers_by_gateway(controls: dict[str, Path],
                        mode: str = SYNC_MODES[0]) -> dict[str, DatapathApplier]:
    """Gateway -> the applier of the daemon running it (``controls``: gateway -> the daemon's
    unixctl socket): one applier per daemon, shared by the gateways on it."""
    by_socket: dict[Path, list[str]] = {}
    for gateway, path in controls.items():
        by_socket.setdefault(path, []).append(gateway)
    check_sync(mode, any(len(gateways) > 1 for gateways in by_socket.values()))
    shared = {path: DatapathApplier("+".join(gateways), path, mode)
              for path, gateways in by_socket.items()}
    return {gateway: shared[path] for gateway, path in controls.items()}


class DatapathApplier:
    """One daemon's worker: make its gateways' new rules hold in its datapath, then run the
    callbacks."""

    def __init__(self, gateway: str, control_socket: Path, mode: str = SYNC_MODES[0]) -> None:
        check_sync(mode, shared_daemon=False)
        self.gateway = gateway
        self.mode = mode
        self.unixctl = Unixctl(control_socket)
        self._changed = threading.Condition()
        self._work: list[tuple[int, Callback, int | None]] = []
        """Syncs asked for and not yet started: (snapshot id, callback, ticket)."""
        self._first_asked = 0.0
        self._last_ticket = 0
        self._awaited = 0
        """The newest ticket the syncs asked for wait for: the last one out at the first."""
        self._outstanding: dict[int, str] = {}
        """Ticket -> gateway of every barrier sent whose reply has not asked for its sync."""
        self._stopped = False
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name=f"apply-{gateway}")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        with self._changed:
            self._stopped = True
            self._changed.notify()

    def expect(self, gateway: str) -> int:
        """A barrier to ``gateway`` whose reply will ask for a sync is being sent: its ticket
        (pass it to :meth:`after_sync`)."""
        with self._changed:
            self._last_ticket += 1
            self._outstanding[self._last_ticket] = gateway
            return self._last_ticket

    def withdraw(self, gateway: str) -> None:
        """``gateway``'s connection is gone: its barriers out will never come back."""
        with self._changed:
            self._outstanding = {t: g for t, g in self._outstanding.items() if g != gateway}
            if self._work and self._batch_complete():
                self._changed.notify()

    def after_sync(self, snapshot_id: int, done: Callback, ticket: int | None = None) -> None:
        """Make the rules hold (:meth:`sync`), then ``done(None)``, or ``done(reason)``.

        ``snapshot_id``: the id the gateway's stamp rule in the tables stamps now (or an
        older one); ``ticket``: the barrier's from :meth:`expect` (None: sync without
        waiting for other barriers).
        """
        with self._changed:
            self._outstanding.pop(ticket, None)  # type: ignore[arg-type]
            first = not self._work
            if first:  # the batch waits for the barriers out now, not for any sent later
                self._first_asked = time.monotonic()
                self._awaited = self._last_ticket
            self._work.append((snapshot_id, done, ticket))
            if first or self._batch_complete():  # the first starts the thread's wait
                self._changed.notify()

    def _batch_complete(self) -> bool:
        """Whether every barrier that was out when the first sync was asked for came back."""
        return not self._outstanding or min(self._outstanding) > self._awaited

    def sync(self, snapshot_id: int) -> None:
        """Return once packets see the rules that were in the tables when this was called."""
        if self.mode == "watch" and self._watch(snapshot_id):
            return
        self.unixctl.call("revalidator/purge")

    def _watch(self, snapshot_id: int) -> bool:
        """True once no cached flow marks an id older than ``snapshot_id``; False after the
        timeout."""
        deadline = time.monotonic() + WATCH_TIMEOUT
        pause = WATCH_FIRST_PAUSE
        while True:
            stale = stale_flows(self.unixctl.call("dpctl/dump-flows"), snapshot_id)
            if not stale:
                return True
            if time.monotonic() >= deadline:
                log.warning("gateway %s: %d datapath flows still stamp an older id after %.0f "
                            "ms: %s", self.gateway, len(stale), WATCH_TIMEOUT * 1e3,
                            FALLBACK_PURGE_LOG)
                return False
            time.sleep(pause)
            pause = min(2 * pause, WATCH_LONGEST_PAUSE)

    def _next_batch(self) -> list[tuple[int, Callback, int | None]] | None:
        """The syncs to serve with the next one (every one asked for by then), once their
        batch is complete, waited ``SIBLING_WAIT`` for or the applier stopped; None once
        stopped with nothing left."""
        with self._changed:
            while True:
                left = None
                if self._work:
                    left = self._first_asked + SIBLING_WAIT - time.monotonic()
                    if left <= 0 or self._stopped or self._batch_complete():
                        # Barriers still out are late: no later batch waits for them.
                        self._outstanding = {ticket: gateway for ticket, gateway
                                             in self._outstanding.items()
                                             if ticket > self._awaited}
                        batch, self._work = self._work, []
                        return batch
                if self._stopped:
                    return None
                self._changed.wait(left)

    def _run(self) -> None:
        while (batch := self._next_batch()) is not None:
            newest = max(snapshot_id for snapshot_id, _, _ in batch)
            try:
                self.sync(newest)
                failure = None
            except UnixctlError as error:
                failure = f"datapath sync failed: {error}"
                log.error("gateway %s: %s", self.gateway, failure)
            for _, callback, _ in batch:
                callback(failure)
        self.unixctl.close()
