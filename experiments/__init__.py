"""Experiments: named sweeps that write tidy CSV data, and the figures drawn from it.

Each module defines one :class:`~experiments.base.Experiment`: its runs and
its figures (``draw``, with the helpers of :mod:`analysis`), found by one
name. This registry names them, one entry each, for ``beaver experiment``
and ``beaver plot``. Results go to ``<out>/<name>/<name>.csv`` (one row per
observation, units in the column names) with the parameters in
``<name>.json`` beside it; figures are drawn from those files alone.

================ ============================================================
name             question (the paper's figure)
================ ============================================================
effective-rate   share of snapshots accepted vs frequency and |G| (Fig 11)
update-bound     t1 - t0 vs the real spread of gateway updates (Fig 13)
max-rate         highest sustained snapshot rate, with and without
                 parallelism (Fig 10)
baselines        Beaver vs Lai-Yang, Chandy-Lamport, polling
tau-sensitivity  accepted-but-inconsistent snapshots when tau_min is wrong
faults           accepted-inconsistent snapshots and accepted share under every
                 injected fault and rate, for every protocol
emulated-timings t1 - t0 per |G| and relayed chain times in the emulated
                 data center (Fig 12 and 13 on real switches; needs root)
emulated-max-rate snapshots started per second by |G|, one gateway update at a
                 time and pipelined, in the emulated data center (Fig 10; root)
overhead         user traffic without and with snapshots, beside an A/A
                 calibration, in the emulated data center (Fig 14; root)
bot-detection    bots found from each protocol's snapshots (Table 3)
deadlock         phantom and real deadlocks, and an invariant check, from
                 snapshots of a lock service
emulated-bot-detection the bot-detection rule on emulated snapshots (root)
================ ============================================================
"""

from __future__ import annotations

from experiments import (
    baselines,
    bot_detection,
    deadlock,
    effective_rate,
    emulated_bot_detection,
    emulated_max_rate,
    emulated_timings,
    faults,
    max_rate,
    overhead,
    tau_sensitivity,
    update_bound,
)
from experiments.base import Experiment, result_paths, run_experiment

EXPERIMENTS: dict[str, Experiment] = {
    module.EXPERIMENT.name: module.EXPERIMENT
    for module in (effective_rate, update_bound, max_rate, baselines, tau_sensitivity,
                   faults, emulated_timings, emulated_max_rate, overhead, bot_detection,
                   deadlock, emulated_bot_detection)
}

__all__ = ["EXPERIMENTS", "Experiment", "result_paths", "run_experiment"]
