"""Finished snapshots into the store, then out of the core's memory.

A snapshot is written as the core assembled it, with each node's capture
time (from its local snapshot reports) and each gateway's timing. Snapshots
that finish together (in one turn of the coordinator's loop) are written in
one transaction (:meth:`~controller.coordinator.store.Store.add_snapshots`);
a snapshot is never held back for later ones. A node's state is encoded once
per local snapshot, when the report comes, however many snapshots that
local snapshot covers. Once every snapshot up to some id is stored, the core
forgets them (:meth:`~beaver.coordinator.Coordinator.forget`), and so does
this writer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

from beaver.coordinator import Coordinator
from beaver.records import GatewayTiming, LocalSnapshot
from controller.coordinator.snapshot_records import json_text
from controller.coordinator.store import FinishedSnapshot, Store, StoredInFlight, StoredLocal


class _Taken(NamedTuple):
    """What the writer keeps of one accepted local snapshot."""

    first_id: int
    last_id: int
    taken_at: float
    state_json: str


class SnapshotWriter:
    """Stores the snapshots of ``run`` taken under ``protocol_name``."""

    def __init__(self, core: Coordinator, store: Store, run: int, protocol_name: str):
        self.core = core
        self.store = store
        self.run = run
        self.protocol_name = protocol_name
        self.stored: set[int] = set()
        self._forgotten_through = 0
        self._taken: dict[str, list[_Taken]] = {n: [] for n in core.nodes}

    def taken(self, local: LocalSnapshot) -> None:
        """A node's local snapshot the core accepted: remember when it was taken, and its
        state as the store writes it."""
        self._taken[local.node].append(
            _Taken(local.first_id, local.last_id, local.taken_at, json_text(local.state)))

    def write(self, finished: Sequence[tuple[int, Mapping[str, GatewayTiming]]]) -> None:
        """Write snapshots that finished together (ids with their gateways' timings), as the
        core sees them, in one transaction; then let the core forget what it can."""
        self.store.add_snapshots(self.run, self.protocol_name,
                                 [self._assembled(k, gateways) for k, gateways in finished])
        self.stored.update(k for k, _ in finished)
        through = self._forgotten_through
        while through + 1 in self.stored:
            through += 1
        if through > self._forgotten_through:
            self._forgotten_through = through
            self.core.forget(through)
            for node, taken in self._taken.items():
                self._taken[node] = [t for t in taken if t.last_id > through]

    def _assembled(self, k: int, gateways: Mapping[str, GatewayTiming]) -> FinishedSnapshot:
        snapshot = self.core.assemble(k)
        status = snapshot.status
        states = []
        for node, state in sorted(snapshot.states.items()):
            taken = self._local(node, k)
            states.append(StoredLocal(node, taken.taken_at, state, taken.state_json))
        in_flight = tuple(
            StoredInFlight(m.receiver, m.sender, m.received_at, m.message)
            for m in snapshot.in_flight
        )
        return FinishedSnapshot(
            snapshot_id=k, t0=status.t0, t1=status.t1, valid=bool(status.valid),
            complete=status.complete, completed_at=status.completed_at,
            states=tuple(states), in_flight=in_flight,
            gateways=tuple(timing for _, timing in sorted(gateways.items())),
        )

    def _local(self, node: str, k: int) -> _Taken:
        return next(t for t in reversed(self._taken[node]) if t.first_id <= k <= t.last_id)
