"""Finished snapshots into the store, then out of the core's memory.

A snapshot is written as the core assembled it, in one transaction
(:meth:`~controller.coordinator.store.Store.add_snapshot`), with each node's
capture time (from its local snapshot reports) and each gateway's timing.
Once every snapshot up to some id is stored, the core forgets them
(:meth:`~beaver.coordinator.Coordinator.forget`), and so does this writer.
"""

from __future__ import annotations

from collections.abc import Mapping

from beaver.coordinator import Coordinator
from beaver.records import GatewayTiming, LocalSnapshot
from controller.coordinator.store import FinishedSnapshot, Store, StoredInFlight, StoredLocal


class SnapshotWriter:
    """Stores the snapshots of ``run`` taken under ``protocol_name``."""

    def __init__(self, core: Coordinator, store: Store, run: int, protocol_name: str):
        self.core = core
        self.store = store
        self.run = run
        self.protocol_name = protocol_name
        self.stored: set[int] = set()
        self._forgotten_through = 0
        self._taken_at: dict[str, list[tuple[int, int, float]]] = {n: [] for n in core.nodes}

    def taken(self, local: LocalSnapshot) -> None:
        """A node's local snapshot the core accepted: remember when it was taken."""
        self._taken_at[local.node].append((local.first_id, local.last_id, local.taken_at))

    def write(self, k: int, gateways: Mapping[str, GatewayTiming]) -> None:
        """Write snapshot k as the core sees it, then let the core forget what it can."""
        snapshot = self.core.assemble(k)
        status = snapshot.status
        states = tuple(
            StoredLocal(node, self._local_time(node, k), state)
            for node, state in sorted(snapshot.states.items())
        )
        in_flight = tuple(
            StoredInFlight(m.receiver, m.sender, m.received_at, m.message)
            for m in snapshot.in_flight
        )
        self.store.add_snapshot(self.run, self.protocol_name, FinishedSnapshot(
            snapshot_id=k, t0=status.t0, t1=status.t1, valid=bool(status.valid),
            complete=status.complete, completed_at=status.completed_at,
            states=states, in_flight=in_flight,
            gateways=tuple(timing for _, timing in sorted(gateways.items())),
        ))
        self.stored.add(k)
        through = self._forgotten_through
        while through + 1 in self.stored:
            through += 1
        if through > self._forgotten_through:
            self._forgotten_through = through
            self.core.forget(through)
            for node, times in self._taken_at.items():
                self._taken_at[node] = [t for t in times if t[1] > through]

    def _local_time(self, node: str, k: int) -> float:
        return next(taken_at for first, last, taken_at in reversed(self._taken_at[node])
                    if first <= k <= last)
