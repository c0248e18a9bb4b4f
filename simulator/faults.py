"""The faults a simulated world can inject, and the transports that meet them.

Each option is off by default; a world without faults runs exactly as the
fault-free model describes. The full model, what each fault breaks and what
the protocol assumes, is in ``docs/faults.md``. In short:

- **Control plane** (``control_loss``, ``control_duplicate``,
  ``control_reorder``): gateway updates, their acknowledgements and node
  notifications are datagrams; each copy is lost with ``control_loss``, an
  extra copy follows with ``control_duplicate``, and ``control_reorder``
  holds every copy back by a uniform extra delay of up to
  :data:`REORDER_SPREAD`, so later messages often overtake earlier ones.
  Node reports travel on a per-node reliable stream (sequence numbers and
  retransmission, as over TCP): a lost segment costs a retransmission
  timeout, duplicates and reordering are undone below the coordinator.
  With any control or crash fault the coordinator fails a gateway update
  after ``update_timeout`` (``Coordinator.expire``) and re-sends what is
  overdue (``Coordinator.retransmit``).
- **Gateway crash** (``gateway_crash_rate_hz`` per gateway): the gateway is
  down for ``downtime``: updates to it and packets through it are lost,
  then it restarts ``no-id`` (it forwards nothing until the coordinator
  sets an id: the safe restart), ``old-id`` (it stamps an id older than one
  it acknowledged and says so to the coordinator, which revokes what that
  can break: detectable) or ``silent-old-id`` (the same without telling:
  the protocol's assumption broken, undetectable by the coordinator).
- **Node crash** (``node_crash_rate_hz`` per node): the node stops for
  ``downtime`` and restarts where its durable log ends (state and snapshot
  state machine intact); it sends nothing while down, in-group messages to
  it wait in their senders' transports, out-group messages and
  notifications to it are lost.
- **Data plane** (``data_loss``, ``data_duplicate``): in-group channels are
  reliable and FIFO (a lost packet is retransmitted after
  ``retransmit_timeout``, holding the channel; a duplicate is discarded by
  the receiver's transport). Out-group hops are datagrams: a lost one is
  gone, a duplicated one arrives twice as two requests, each stamped where
  it crosses a gateway.
- **Clock skew** (``clock_skew``): every node and gateway clock is off the
  coordinator's by a fixed amount uniform in ``[-skew, +skew]``. Validity
  uses the coordinator's clock only; skew shifts the chain times gateways
  measure.
- **Short chains** (``chain_violation_share``): that share of external
  chains takes ``tau_min * U(0.05, 0.95)``, shorter than the world's
  tau_min: the protocol's own assumption broken. With ``learn_tau_min``
  the gateway reports each measured chain shorter than the coordinator's
  bound, and ``Coordinator.lower_tau_min`` revokes what it no longer covers.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, fields

from simulator.latency import US

REORDER_SPREAD = 10 * US
"""With ``control_reorder``, the most a control message is held back."""
GATEWAY_RESTARTS = ("no-id", "old-id", "silent-old-id")
ROLLBACK_IDS = 4
"""A gateway restarting with an old id goes back by 1..this many ids."""


@dataclass(frozen=True)
class Faults:
    """Which faults a world injects, and how often (all off by default)."""

    control_loss: float = 0.0
    control_duplicate: float = 0.0
    control_reorder: bool = False
    gateway_crash_rate_hz: float = 0.0
    gateway_restart: str = "no-id"
    node_crash_rate_hz: float = 0.0
    data_loss: float = 0.0
    data_duplicate: float = 0.0
    clock_skew: float = 0.0
    """Largest clock offset of a node or gateway from the coordinator (seconds)."""
    chain_violation_share: float = 0.0
    learn_tau_min: bool = False
    """Gateways report measured chains shorter than the coordinator's bound."""
    downtime: float = 200 * US
    """How long a crashed gateway or node stays down (seconds)."""
    update_timeout: float = 200 * US
    """The coordinator's gateway update timeout and retransmission period under faults."""
    retransmit_timeout: float = 100 * US
    """A reliable stream's retransmission timeout (reports, in-group data)."""

    def __post_init__(self) -> None:
        for name in ("control_loss", "control_duplicate", "data_loss", "data_duplicate",
                     "chain_violation_share"):
            value = getattr(self, name)
            limit = 1 if name in ("data_duplicate", "control_duplicate",
                                  "chain_violation_share") else 0.9
            if not 0 <= value <= limit:
                raise ValueError(f"{name} must be in 0..{limit:g}, got {value}")
        for name in ("gateway_crash_rate_hz", "node_crash_rate_hz", "clock_skew"):
            if not 0 <= getattr(self, name) < math.inf:
                raise ValueError(f"{name} must be >= 0 and finite, got {getattr(self, name)}")
        for name in ("downtime", "update_timeout", "retransmit_timeout"):
            if not 0 < getattr(self, name) < math.inf:
                raise ValueError(f"{name} must be > 0 and finite, got {getattr(self, name)}")
        if self.gateway_restart not in GATEWAY_RESTARTS:
            raise ValueError(f"gateway_restart must be one of {', '.join(GATEWAY_RESTARTS)}, "
                             f"got {self.gateway_restart!r}")

    @property
    def control(self) -> bool:
        """Whether the coordinator needs its timeouts: control faults or crashes."""
        return bool(self.control_loss or self.control_duplicate or self.control_reorder
                    or self.gateway_crash_rate_hz or self.node_crash_rate_hz)

    @property
    def any(self) -> bool:
        return self != Faults()

    def retransmissions(self, loss: float, rng: random.Random) -> int:
        """How many times a reliable stream sends a segment again before one copy arrives."""
        count = 0
        while loss and rng.random() < loss:
            count += 1
        return count

    def as_dict(self) -> dict[str, object]:
        return {field.name: getattr(self, field.name) for field in fields(self)}


@dataclass
class FaultCounts:
    """What the faults did during one run (all zero without faults)."""

    control_lost: int = 0
    control_duplicated: int = 0
    report_retransmissions: int = 0
    data_lost: int = 0
    data_duplicated: int = 0
    gateway_crashes: int = 0
    gateway_rollbacks: int = 0
    """Gateways that restarted stamping an id older than one they acknowledged."""
    node_crashes: int = 0
    inbound_dropped: int = 0
    """Out-group packets lost at a crashed gateway or node, or to data loss."""
    short_chains: int = 0
    """External chains shorter than the coordinator's tau_min (ground truth)."""
    failed_updates: int = 0
    """Gateway updates the coordinator gave up on (timeout)."""
    retransmitted: int = 0
    """Commands the coordinator sent again (updates, notifications)."""
