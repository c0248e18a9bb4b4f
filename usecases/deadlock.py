"""Deadlock detection from each snapshot's wait-for graph (the lock service of
:mod:`simulator.locks`).

A site's recorded history, replayed through a fresh
:class:`~simulator.locks.LockTable`, gives the lock table the snapshot
holds for it: who holds each lock and who waits for it. The wait-for graph
of a snapshot joins every site's table: client A -> client B when A waits
for a lock B holds. A cycle is a deadlock report.

Deadlock is stable: once the cycle forms nothing breaks it. A causally
consistent snapshot is a state the run could have passed through on its
way to its real end, so a cycle it shows is still there at the end: a real
deadlock. A snapshot that mixes one site's early table with another's late
one can show a cycle whose waits never coexisted: a *phantom* deadlock.
The typical one: client C released lock x at site S (S acknowledged), then
asked site T for a lock D holds, while D waited at S for x; a snapshot that
has T's late table and S's early one shows C and D waiting for each other.
C's request to T follows S's acknowledgement through C, outside the
in-group: exactly the external causal chain Beaver's gateways close.
Ground truth is the service's own record of every cycle as it formed
(:attr:`simulator.locks.LockWorld.deadlocks`), matched by the exact waiting
requests on the cycle.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from beaver.snapshot_status import GlobalSnapshot
from simulator.locks import Acquire, LockTable, LockWorld, Release, cycles
from usecases.history import Observed


def lock_tables(
    observed: Observed, snapshots: Iterable[GlobalSnapshot]
) -> Iterator[tuple[GlobalSnapshot, dict[str, LockTable]]]:
    """Per snapshot (in id order), every site's lock table as the snapshot records it.

    Each site's recorded history is replayed through a
    :class:`~simulator.locks.LockTable` once for all snapshots (the tables are the
    same objects from one snapshot to the next: read them before moving on)."""
    meaning = lock_world(observed).meaning
    tables: dict[str, LockTable] = {}
    for snapshot, fresh in observed.advancing(snapshots):
        for node, events in fresh.items():
            table = tables.setdefault(node, LockTable())
            for event in events:
                request = meaning.get(~event) if event < 0 else None
                if isinstance(request, Acquire | Release):
                    table.handle(request)
        yield snapshot, tables


def shown_deadlocks(tables: dict[str, LockTable]) -> list[frozenset[Acquire]]:
    """The deadlocks a snapshot's tables show: cycles of the joined wait-for graph,
    each as the set of waiting requests on it."""
    return cycles([pair for table in tables.values() for pair in table.waits()])


@dataclass(frozen=True)
class DeadlockReport:
    """A run's deadlock reports from the snapshots a protocol accepted, against ground truth."""

    snapshots_used: int
    reports: int
    """Cycles reported, summed over snapshots."""
    phantom_deadlocks: int
    """Reports whose cycle of waits never existed."""
    snapshots_with_phantom: int
    deadlocks_real: int
    deadlocks_found: int
    """Real deadlocks reported by at least one snapshot."""
    deadlocks_missed: int
    """Real deadlocks formed before some snapshot started that this snapshot did not report."""


def report(observed: Observed) -> DeadlockReport:
    real = {deadlock.waits: deadlock for deadlock in lock_world(observed).deadlocks}
    used = observed.accepted()
    reports = phantoms = phantom_snapshots = 0
    found: set[frozenset[Acquire]] = set()
    missed: set[frozenset[Acquire]] = set()
    for snapshot, tables in lock_tables(observed, used):
        shown = set(shown_deadlocks(tables))
        phantom = {cycle for cycle in shown if cycle not in real}
        reports += len(shown)
        phantoms += len(phantom)
        phantom_snapshots += bool(phantom)
        found |= shown - phantom
        missed |= {key for key, deadlock in real.items()
                   if deadlock.formed_at < snapshot.status.t0 and key not in shown}
    return DeadlockReport(
        snapshots_used=len(used),
        reports=reports,
        phantom_deadlocks=phantoms,
        snapshots_with_phantom=phantom_snapshots,
        deadlocks_real=len(real),
        deadlocks_found=len(found),
        deadlocks_missed=len(missed),
    )


def lock_world(observed: Observed) -> LockWorld:
    world = observed.world
    if not isinstance(world, LockWorld):
        raise TypeError("deadlock detection reads a lock service run (simulator.locks.LockWorld)")
    return world
