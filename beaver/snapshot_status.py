"""What the coordinator knows and hands out about snapshots.

:class:`SnapshotStatus` is one snapshot's progress on the coordinator's
clock (t0, t1, validity, completeness, the gateways' answers);
:class:`GlobalSnapshot` is an assembled snapshot; :class:`Notify` says
which in-group nodes the coordinator tells about a new snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from beaver.records import InFlight


class Notify(Enum):
    """When the coordinator tells in-group nodes about a new snapshot."""

    ALL = "all"
    """Every node, once the gateway phase is over (at start without gateways)."""
    INITIATOR = "initiator"
    """Only the first node (Chandy-Lamport: markers carry the snapshot on)."""


@dataclass
class SnapshotStatus:
    """What the coordinator knows about one snapshot (times on the coordinator's clock)."""

    snapshot_id: int
    t0: float
    t1: float | None = None
    valid: bool | None = None
    """None while the gateway phase runs; then whether t1 - t0 < tau_min."""
    complete: bool = False
    completed_at: float | None = None
    pending_gateways: set[str] = field(default_factory=set)
    gateway_acks: dict[str, float] = field(default_factory=dict)
    failed_gateways: set[str] = field(default_factory=set)

    @property
    def update_time(self) -> float | None:
        return None if self.t1 is None else self.t1 - self.t0

    @property
    def finished(self) -> bool:
        return self.complete and self.valid is not None


@dataclass(frozen=True)
class GlobalSnapshot:
    """An assembled snapshot: every node's state and the in-flight messages."""

    snapshot_id: int
    status: SnapshotStatus
    states: dict[str, Any]
    in_flight: tuple[InFlight, ...]
