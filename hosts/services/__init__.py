"""The services the in-group runs, and the interface the snapshot runtime drives.

A service is a plain object with no sockets: the runtime hands it each
delivered datagram and asks it, when its workload is due, for new work
(telling it which in-group peers are known to be up: a datagram sent to a
peer that has not bound its socket yet would be lost). It answers with
:class:`Send` values (to an in-group peer by name, or to an out-group
address), which the runtime stamps and sends. ``capture`` returns
the service's state as JSON-serialisable data; the protocol core calls it
when the node takes a local snapshot, always between two deliveries.
``restore`` puts such a state back. A service may also keep ``ignored_by``,
the datagrams it refused to act on by reason (a dict the runtime reports in
its counters as ``service_ignored_by``).

- :mod:`~hosts.services.bank`: accounts sharded over the in-group, transfers
  between nodes and through out-group relays; the consistency invariant.
- :mod:`~hosts.services.kv`: a key-value store behind a VIP for external
  clients, replicating writes to its peers.

Each module also holds its service's :class:`~hosts.services.kind.ServiceKind`
(options, tau policy, invariant, views for ``beaver show`` and ``beaver
restore``), registered by name in :mod:`hosts.services.registry`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

Address = tuple[str, int]


@dataclass(frozen=True)
class Send:
    """A datagram a service wants sent: to an in-group peer (name) or an out-group address."""

    to: str | Address
    message: dict[str, Any]


class Service(Protocol):
    """What the runtime needs from a service."""

    def capture(self) -> Any: ...

    def restore(self, state: Any) -> None: ...

    def deliver(
        self, message: dict[str, Any], sender: str | None, source: Address, now: float
    ) -> list[Send]:
        """Handle a datagram from in-group peer ``sender`` (None: out-group) at ``source``."""
        ...

    def next_work(self) -> float | None:
        """When the workload next wants to run (``time.monotonic()``), None if never."""
        ...

    def work(self, now: float, reachable: frozenset[str]) -> list[Send]:
        """Run the workload due at ``now``, sending only to ``reachable`` peers."""
        ...
