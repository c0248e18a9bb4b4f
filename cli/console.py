"""Mininet's CLI with the testbed's commands, over a running emulation.

At the ``mininet>`` prompt every Mininet command works (``nodes``, ``net``,
``h1 ping h2``, ``dump``, ...), and five more talk to the snapshot
coordinator of the run and its database:

============== ============================================================
snapshot [N]   take N snapshots (default 1) at the run's ``--rate``; each
               is stored as it finishes
snapshots      list the run's stored snapshots (as ``beaver show``)
show ID        one stored snapshot: states, in-flight messages, timings
gateways       each gateway: the newest snapshot id it acknowledged and how
               long its last update took
restore ID     put the running service back to stored snapshot ID (every
               agent gets its state and in-flight messages, and acknowledges)
============== ============================================================

A bad argument prints one line and the prompt comes back; nothing a user
types stops the emulation but ``exit`` (or end of input).
"""

from __future__ import annotations

import sys
from typing import Any

from mininet.cli import CLI

from cli.commands.show import format_run, format_snapshot, run_document, snapshot_document
from cli.errors import UsageError
from controller.coordinator.store import Store

MAX_AT_ONCE = 1000
"""Snapshots one ``snapshot N`` may ask for."""


class SnapshotCLI(CLI):
    """The Mininet prompt of an emulated run, with ``snapshot``, ``snapshots``, ``show``,
    ``gateways`` and ``restore``."""

    def __init__(self, emulation: Any, store: Store, run: int, rate: float,
                 stdin: Any = sys.stdin):
        self.emulation, self.store, self.run_id, self.rate = emulation, store, run, rate
        self.given_up: list[int] = []
        """Snapshots a ``snapshot N`` gave up on (stored incomplete)."""
        self.stalled: str | None = None
        super().__init__(emulation.datacenter.net, stdin=stdin)

    def say(self, text: str) -> None:
        print(text, flush=True)

    def do_snapshot(self, line: str) -> None:
        """snapshot [N]: take N snapshots (default 1) and store them."""
        try:
            count = _whole(line or "1", "snapshot N", 1, MAX_AT_ONCE)
        except UsageError as error:
            self.say(f"*** {error}")
            return
        before = len(self.store.snapshot_rows(self.run_id))
        result = self.emulation.service.take(count, self.rate, count / self.rate + 30)
        self.given_up += list(result.given_up)
        self.stalled = result.stalled or self.stalled
        rows = self.store.snapshot_rows(self.run_id)[before:]
        accepted = sum(bool(row["valid"] and row["complete"]) for row in rows)
        ids = f" ({rows[0]['snapshot_id']}..{rows[-1]['snapshot_id']})" if rows else ""
        self.say(f"stored {len(rows)} snapshot(s){ids}, {accepted} accepted"
                 + (f"; {result.stalled}" if result.stalled else ""))

    def do_snapshots(self, line: str) -> None:
        """snapshots: list the run's stored snapshots."""
        self.say(format_run(run_document(self.store, self.run_id)))

    def do_show(self, line: str) -> None:
        """show ID: one stored snapshot in full."""
        try:
            snapshot_id = _whole(line, "show ID", 1, None)
            self.say(format_snapshot(snapshot_document(self.store, self.run_id, snapshot_id)))
        except UsageError as error:
            self.say(f"*** {error}")

    def do_gateways(self, line: str) -> None:
        """gateways: each gateway's newest acknowledged id and its last update's timing."""
        newest: dict[str, tuple[int, Any]] = {}
        for row in self.store.snapshot_rows(self.run_id):
            for timing in self.store.snapshot(self.run_id, row["snapshot_id"]).gateways:
                if timing.acked_at is not None or timing.gateway not in newest:
                    newest[timing.gateway] = (row["snapshot_id"], timing)
        if not newest:
            self.say("no gateway updated yet (take a snapshot; polling, Lai-Yang and "
                     "Chandy-Lamport use no gateways)")
            return
        for gateway, (snapshot_id, timing) in sorted(newest.items()):
            if timing.acked_at is None or timing.sent_at is None:
                self.say(f"{gateway}: update for snapshot {snapshot_id} not acknowledged")
            else:
                took = (timing.acked_at - timing.sent_at) * 1e6
                self.say(f"{gateway}: stamps snapshot id {snapshot_id}; last update "
                         f"acknowledged {took:.0f} us after it was sent")

    def do_restore(self, line: str) -> None:
        """restore ID: put the running service back to stored snapshot ID."""
        try:
            snapshot_id = _whole(line, "restore ID", 1, None)
            snapshot = self.store.snapshot(self.run_id, snapshot_id)
        except UsageError as error:
            self.say(f"*** {error}")
            return
        except KeyError as error:
            self.say(f"*** {str(error).strip(chr(39) + chr(34))}")
            return
        states = {s.node: s.state for s in snapshot.states}
        channels: dict[str, list[dict[str, Any]]] = {}
        for message in snapshot.in_flight:
            channels.setdefault(message.receiver, []).append(
                {"sender": message.sender, "message": message.message})
        try:
            self.emulation.service.restore(snapshot_id, states, channels, timeout=20)
        except (TimeoutError, RuntimeError) as error:
            self.say(f"*** restore of snapshot {snapshot_id} failed: {error}")
            return
        self.say(f"restored snapshot {snapshot_id}: {len(states)} node(s) acknowledged their "
                 f"state, {len(snapshot.in_flight)} in-flight message(s) re-delivered")


def _whole(text: str, usage: str, low: int, high: int | None) -> int:
    try:
        value = int(text.strip())
    except ValueError:
        raise UsageError(f"usage: {usage} (a whole number, got {text.strip()!r})") from None
    if value < low or (high is not None and value > high):
        bound = f"{low}..{high}" if high is not None else f">= {low}"
        raise UsageError(f"usage: {usage} ({bound}, got {value})")
    return value
