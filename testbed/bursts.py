"""The highest snapshot rate a running emulation sustains, and what its snapshots are worth.

A *burst* asks the coordinator for snapshots far faster than it can start
them, with up to ``window`` gateway updates in flight (1: one at a time);
the coordinator then starts one whenever the core's window and the update
pipeline allow, so the rate at which it starts them is what the emulation
sustains. The first starts of a burst fill an empty pipeline and an empty
id window at once (up to the core's window of ids may start before any
must leave the wire: :mod:`beaver.wire_floor`) and say nothing about that
rate, so it is counted from the t0 of the start after the larger of the
two windows to the last (:func:`stats.start_rate`); a burst needs more
than that many plus one snapshots for a rate. Several bursts may run in one emulation (the
serial and the pipelined rate of the same run, and a repeat of the first
as an A/A calibration).

Once the hosts are stopped, :func:`judge_bursts` asks the oracle about
every stored snapshot of the run and counts, per burst, the accepted ones
(valid and complete), those the oracle judges causally inconsistent and
those that break the service's invariant (the bank's books balance).
"""

from __future__ import annotations

from dataclasses import dataclass

from controller.coordinator.store import Store
from hosts.services.registry import SERVICES
from stats import start_rate
from testbed.emulation import Emulation
from testbed.truth import judge_run

OFFERED_RATE_HZ = 1e6
"""Snapshots asked for per second: far beyond what any emulation starts."""
PIPELINED_BURST = 2400
"""Snapshots of a pipelined burst: after the core's window of ids (448), which may all
start at once, enough for the rate over about a second, several packet lifetimes and
finish times, at well over 1,000 starts/s (a shorter one measures the echo of the first
window's rush, not what the run sustains)."""


@dataclass(frozen=True)
class Burst:
    window: int
    first_id: int
    last_id: int
    started: int
    stored: int
    start_rate_hz: float | None
    """Starts per second after the first ``window`` or the core's window of ids, whichever
    is larger (None: too few snapshots)."""


@dataclass(frozen=True)
class Judged:
    """What the snapshots of one burst are worth."""

    accepted: int
    inconsistent_accepted: int | None
    """Accepted snapshots the oracle judges causally inconsistent (None: not judged)."""
    invariant_violations: int
    """Accepted snapshots breaking the service's invariant (0 for one without)."""


def burst(emulation: Emulation, snapshots: int, window: int, timeout: float = 120.0) -> Burst:
    """Start ``snapshots`` snapshots as fast as the coordinator allows with ``window``;
    RuntimeError if the take stopped early (a timeout, a component that failed)."""
    service = emulation.service
    assert service is not None
    service.set_update_window(window)
    first = service.core.newest + 1
    result = service.take(snapshots, OFFERED_RATE_HZ, timeout)
    if result.stalled:
        raise RuntimeError(f"a burst with {window} updates in flight stopped: {result.stalled}")
    last = service.core.newest
    starts = [row["t0"] for row in service.store.snapshot_rows(service.run)
              if first <= row["snapshot_id"] <= last]
    return Burst(window, first, last, result.started, result.stored,
                 start_rate(starts, skip=max(window, service.core.window)))


def judge_bursts(emulation: Emulation, store: Store, run: int,
                 bursts: list[Burst]) -> list[Judged]:
    """The oracle's and the invariant's verdicts per burst (call after ``stop_hosts``)."""
    verdicts = {v.snapshot_id: v for v in judge_run(emulation.truth_logs(), store, run)}
    store.set_verdicts(run, verdicts.values())
    rows = {r["snapshot_id"]: r for r in store.snapshot_rows(run)}
    kind = SERVICES[emulation.settings.service]
    parameters = kind.parameters(emulation.settings.ingroup)
    judged = []
    for one in bursts:
        accepted = [k for k in range(one.first_id, one.last_id + 1)
                    if k in rows and rows[k]["valid"] and rows[k]["complete"]]
        inconsistent = sum(not verdicts[k].consistent for k in accepted if k in verdicts)
        violations = 0
        for k in accepted:
            snapshot = store.snapshot(run, k)
            states = {s.node: s.state for s in snapshot.states}
            violations += bool(kind.invariant(states, snapshot.in_flight, parameters))
        judged.append(Judged(len(accepted), inconsistent if verdicts else None, violations))
    return judged
