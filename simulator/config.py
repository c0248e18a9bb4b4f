"""What a simulated world is made of (:class:`WorldConfig`) and what a run produced (:class:`Run`).

A run is a pure function of its :class:`WorldConfig`, seed included.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from beaver.ids import IdSpace
from beaver.protocols import PiggybackNodeFactory, Protocol, protocol
from beaver.snapshot_status import SnapshotStatus
from beaver.wire_floor import DEFAULT_PACKET_LIFETIME
from oracle import EventLog
from simulator.faults import FaultCounts, Faults
from simulator.latency import US, Latencies
from simulator.workload import Workload


@dataclass(frozen=True)
class WorldConfig:
    """Everything a simulation run depends on (with the seed, a run is reproducible)."""

    protocol: str = "beaver"
    nodes: int = 16
    gateways: int = 2
    externals: int = 8
    relays: int | None = None
    """How many of the out-group processes are relays (default: half); the rest are clients."""
    snapshots: int = 200
    tau_min: float = 33 * US
    """The true shortest external causal chain of this world (seconds)."""
    controller_tau_min: float | None = None
    """The bound the coordinator checks (default: the true tau_min)."""
    window: int = 16
    id_bits: int = 6
    packet_lifetime: float = DEFAULT_PACKET_LIFETIME
    """The longest a stamped packet may be in flight, as the coordinator assumes (seconds);
    the world's delays stay far below it (a run lists any packet that took longer)."""
    seed: int = 1
    workload: Workload = field(default_factory=Workload)
    latencies: Latencies = field(default_factory=Latencies)
    node_class: PiggybackNodeFactory | None = None
    """Another implementation of the in-group node rule for a piggybacking protocol
    (``beaver simulate --node-class``, the classroom labs); None: the core's node."""
    faults: Faults = field(default_factory=Faults)
    """The faults the world injects (:mod:`simulator.faults`); none by default."""

    def __post_init__(self) -> None:
        chosen = self.chosen_protocol
        if self.nodes < 2:
            raise ValueError(f"need at least 2 in-group nodes, got {self.nodes}")
        if self.gateways < 0:
            raise ValueError(f"gateway count must be >= 0, got {self.gateways}")
        if chosen.uses_gateways and self.gateways < 1:
            raise ValueError(f"{self.protocol} needs at least 1 gateway, got {self.gateways}")
        if self.externals < 0:
            raise ValueError(f"out-group process count must be >= 0, got {self.externals}")
        if self.externals and not self.gateways:
            raise ValueError("out-group processes need at least 1 gateway to reach the in-group")
        if not 0 <= self.relay_count <= self.externals:
            raise ValueError(f"relays must be in 0..{self.externals}, got {self.relays}")
        if self.snapshots < 0:
            raise ValueError(f"snapshot count must be >= 0, got {self.snapshots}")
        if not 0 < self.tau_min < math.inf:
            raise ValueError(f"tau_min must be > 0 and finite, got {self.tau_min}")
        if not self.checked_tau_min > 0:
            raise ValueError(f"controller tau_min must be > 0, got {self.checked_tau_min}")
        if not 0 < self.packet_lifetime < math.inf:
            raise ValueError(f"packet lifetime must be > 0 and finite, got {self.packet_lifetime}")
        IdSpace(self.id_bits, self.window)

    @property
    def chosen_protocol(self) -> Protocol:
        """The protocol, with ``node_class`` as its in-group node when one is given."""
        chosen = protocol(self.protocol)
        if self.node_class is None:
            return chosen
        return chosen.with_node_class(self.node_class)

    @property
    def relay_count(self) -> int:
        return self.externals // 2 if self.relays is None else self.relays

    @property
    def checked_tau_min(self) -> float:
        return self.tau_min if self.controller_tau_min is None else self.controller_tau_min


@dataclass
class Run:
    """What one simulation produced: the protocol's view and the ground truth."""

    config: WorldConfig
    statuses: list[SnapshotStatus]
    recorded: dict[int, list[int]]
    """Per snapshot, the message ids the protocol recorded as in flight."""
    log: EventLog
    extra_messages: int
    rejected_messages: int
    rejected_reports: int
    events: int
    simulated_s: float
    overdue: list[int]
    """Stamped messages delivered later than the packet lifetime after their stamp."""
    unstarted_adoptions: int
    """Times a node moved to an id the coordinator had not started."""
    faults: FaultCounts = field(default_factory=FaultCounts)
    revoked: frozenset[int] = frozenset()
    """Snapshots whose validity the coordinator revoked during the run (a shorter chain
    measured, a gateway that restarted stamping an older id)."""
