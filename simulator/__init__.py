"""A discrete-event simulator of Beaver and its baselines, judged by the oracle.

- :mod:`~simulator.engine`: the event heap and simulated clock
- :mod:`~simulator.latency`: delay distributions (defaults from the paper)
- :mod:`~simulator.workload`: traffic mix and snapshot rate
- :mod:`~simulator.config`: what a world is made of, what a run produced
- :mod:`~simulator.world`: nodes, gateways, out-group; ground truth
- :mod:`~simulator.ingroup`, :mod:`~simulator.outgroup`: the in-group and out-group paths
- :mod:`~simulator.cuts`: the ground-truth cuts, where capture callbacks ran
- :mod:`~simulator.control`: the coordinator's commands and the answers, with faults
- :mod:`~simulator.waves`: one event per notification wave
- :mod:`~simulator.faults`: the faults a world can inject
- :mod:`~simulator.report`: the protocol's view next to the oracle's verdicts

:func:`simulate` runs one world and judges every snapshot it took. A run is
deterministic for its :class:`WorldConfig` (seed included).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from beaver.snapshot_status import GlobalSnapshot
from oracle import Verdict, judge
from simulator.faults import Faults
from simulator.latency import US, Delay, Latencies
from simulator.report import Summary, summarize
from simulator.workload import Workload
from simulator.world import Run, World, WorldConfig

__all__ = [
    "US", "Delay", "Faults", "Latencies", "Outcome", "Run", "Summary", "Workload", "World",
    "WorldConfig", "simulate",
]


@dataclass
class Outcome:
    world: World
    """The world after the run, for inspection (e.g. why a run stalled)."""
    run: Run
    verdicts: list[Verdict]
    summary: Summary


def simulate(
    config: WorldConfig,
    progress: Callable[[World], None] | None = None,
    on_complete: Callable[[GlobalSnapshot], None] | None = None,
) -> Outcome:
    """Run ``config`` to the end and judge its snapshots (``progress`` is called now and
    then; ``on_complete`` receives each snapshot as the coordinator assembles it)."""
    began = time.perf_counter()
    world = World(config, on_complete=on_complete)
    run = world.run(None if progress is None else lambda: progress(world))
    verdicts = judge(run.log, run.recorded, len(run.statuses))
    return Outcome(world, run, verdicts, summarize(run, verdicts, time.perf_counter() - began))
