"""A run's figures: the protocol's own view next to the oracle's verdicts.

``valid`` and ``complete`` are what the protocol's coordinator says;
``inconsistent`` and ``channel_inexact`` are what the oracle finds in the
ground truth. ``inconsistent_valid`` counts the snapshots a protocol
accepted although they are inconsistent: the number Beaver promises is 0
as long as its tau_min assumption holds.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from beaver.protocols import protocol
from oracle import Verdict
from simulator.faults import FaultCounts
from simulator.latency import US
from simulator.world import Run
from stats import percentile


@dataclass(kw_only=True)
class Summary(FaultCounts):
    """One simulated run in figures: the protocol's view, the oracle's verdicts, fault counts."""

    protocol: str
    seed: int
    nodes: int
    gateways: int
    externals: int
    relays: int
    tau_min_us: float
    controller_tau_min_us: float
    snapshots: int
    """Snapshots started: fewer than ``requested`` when the run stalled (a snapshot never
    finished, so the window stayed full)."""
    requested: int
    valid: int
    complete: int
    inconsistent: int
    inconsistent_valid: int
    channel_inexact: int
    """Complete snapshots whose recorded channel state is not exactly the true one."""
    slow_updates: int
    """Snapshots whose gateway phase took t1 - t0 >= the checked tau_min."""
    slow_valid: int
    """Of those, how many the protocol accepted (must be 0)."""
    extra_messages: int
    t1_t0_p50_us: float | None
    t1_t0_p99_us: float | None
    t1_t0_max_us: float | None
    messages: int
    rejected_messages: int
    rejected_reports: int
    events: int
    simulated_s: float
    wall_s: float
    packet_lifetime_us: float
    """The maximum packet lifetime the coordinator assumes for wire ids."""
    overdue_packets: int
    """Stamped messages that took longer than the packet lifetime (the assumption broken)."""
    overdue_examples: tuple[int, ...]
    """The first few of them (message ids in the ground-truth log)."""
    unstarted_adoptions: int
    """Times a node moved to an id the coordinator had not started (must be 0)."""
    revoked: int = 0
    """Snapshots whose validity the coordinator revoked (a shorter chain measured, a
    gateway that restarted stamping an older id)."""
    inconsistent_revoked: int = 0
    """Of those, how many the oracle finds inconsistent: accepted until revoked."""
    assumption_broken: bool = False
    """The run broke one of the protocol's stated assumptions (a chain shorter than the
    coordinator's tau_min, a gateway stamping an older id than it acknowledged, a stamped
    packet slower than the packet lifetime)."""

    def as_dict(self) -> dict[str, object]:
        """The summary as JSON-ready data: its own figures first, then what the faults did."""
        values = asdict(self)
        counts = [f.name for f in fields(FaultCounts)]
        return {**{k: v for k, v in values.items() if k not in counts},
                **{k: values[k] for k in counts}}


OVERDUE_EXAMPLES = 5


def summarize(run: Run, verdicts: list[Verdict], wall_s: float) -> Summary:
    config = run.config
    statuses = run.statuses
    inconsistent = {v.snapshot_id for v in verdicts if not v.consistent}
    inexact = {v.snapshot_id for v in verdicts if not v.channel_exact}
    valid = {s.snapshot_id for s in statuses if s.valid}
    complete = {s.snapshot_id for s in statuses if s.complete}
    updates = [s.update_time for s in statuses if s.update_time is not None]
    if not protocol(config.protocol).uses_gateways:
        updates = []
    slow = {
        s.snapshot_id for s in statuses
        if s.update_time is not None and s.update_time >= config.checked_tau_min
    }

    def micro(value: float | None) -> float | None:
        return None if value is None else round(value / US, 3)

    return Summary(
        protocol=config.protocol,
        seed=config.seed,
        nodes=config.nodes,
        gateways=config.gateways,
        externals=config.externals,
        relays=config.relay_count,
        tau_min_us=round(config.tau_min / US, 3),
        controller_tau_min_us=round(config.checked_tau_min / US, 3),
        snapshots=len(statuses),
        requested=run.config.snapshots,
        valid=len(valid),
        complete=len(complete),
        inconsistent=len(inconsistent),
        inconsistent_valid=len(inconsistent & valid),
        channel_inexact=len(inexact & complete),
        slow_updates=len(slow),
        slow_valid=len(slow & valid),
        extra_messages=run.extra_messages,
        t1_t0_p50_us=micro(percentile(updates, 0.5)),
        t1_t0_p99_us=micro(percentile(updates, 0.99)),
        t1_t0_max_us=micro(max(updates, default=None)),
        messages=sum(len(events) for events in run.log.events.values()) // 2,
        rejected_messages=run.rejected_messages,
        rejected_reports=run.rejected_reports,
        events=run.events,
        simulated_s=round(run.simulated_s, 6),
        wall_s=round(wall_s, 3),
        packet_lifetime_us=round(config.packet_lifetime / US, 3),
        overdue_packets=len(run.overdue),
        overdue_examples=tuple(run.overdue[:OVERDUE_EXAMPLES]),
        unstarted_adoptions=run.unstarted_adoptions,
        revoked=len(run.revoked),
        inconsistent_revoked=len(inconsistent & run.revoked),
        assumption_broken=bool(run.faults.short_chains or run.faults.gateway_rollbacks
                               or run.overdue),
        **{f.name: getattr(run.faults, f.name) for f in fields(FaultCounts)},
    )
