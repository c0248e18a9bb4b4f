"""Integration testing: checking an invariant of the running lock service on snapshots.

The invariant: *no client holds locks of two transactions at once*. A
client releases every lock of a transaction, and waits for each site's
acknowledgement, before it asks for the first lock of the next one. The
check reads one snapshot's lock tables (:func:`usecases.deadlock.lock_tables`)
and reports every client shown holding locks of two different transactions.

Why this use case: the invariant spans sites that never talk to each other,
only through the clients outside the in-group. A causally consistent
snapshot that shows a client's new lock also shows the old ones released
(the acknowledgements come first, through the client). A snapshot that
takes one site early and another late shows the old lock still held next
to the new one: a false alarm that would fail an integration test of a
correct service. Channel state cannot help (nothing in-group is in flight),
so only the gateways' stamping separates Beaver from Lai-Yang here, which
is what the use case shows. (In-flight message detection was the other
candidate; there Lai-Yang and Chandy-Lamport already record in-group channel
state exactly, so it separates Beaver only from polling.)
"""

from __future__ import annotations

from dataclasses import dataclass

from simulator.locks import LockTable
from usecases.deadlock import lock_tables
from usecases.history import Observed


def two_transaction_holders(tables: dict[str, LockTable]) -> set[str]:
    """Clients the tables show holding locks of two different transactions."""
    held: dict[str, set[int]] = {}
    for table in tables.values():
        for request in table.holder.values():
            held.setdefault(request.client, set()).add(request.transaction)
    return {client for client, transactions in held.items() if len(transactions) > 1}


@dataclass(frozen=True)
class InvariantCheck:
    snapshots_used: int
    false_alarms: int
    """Snapshots the check fails although the service never broke the invariant."""


def check(observed: Observed) -> InvariantCheck:
    """Run the check on every snapshot the protocol accepted (the service is correct:
    every failure is a false alarm)."""
    used = observed.accepted()
    alarms = sum(bool(two_transaction_holders(tables))
                 for _, tables in lock_tables(observed, used))
    return InvariantCheck(len(used), alarms)
