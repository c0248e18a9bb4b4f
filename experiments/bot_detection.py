"""``bot-detection``: finding bots from snapshots, per protocol (the paper's Table 3).

The sessions of :mod:`usecases.bots`: chained clients (the relays) show
the newest ticket a backend gave them, open-loop clients start fresh, and
bots (a share ``bot_ratio`` of all clients, taken from the open-loop ones)
show forged tickets. Every protocol runs the same worlds; a client counts as
flagged when any snapshot the protocol accepted shows it presenting a ticket
no backend in that snapshot issued to it. Per run: true and false positives
and negatives over the clients, how many accepted snapshots flagged an
honest client, and how many accepted snapshots the oracle finds
inconsistent.
"""

from __future__ import annotations

from collections.abc import Iterator

from beaver.protocols import PROTOCOLS
from experiments.base import Experiment, Plan, Progress, Row
from experiments.sweep import grid
from simulator import WorldConfig
from usecases.bots import bots_among, detect
from usecases.history import observe

BOT_RATIOS = [0.0, 0.05, 0.1]
"""The paper's settings: no bots, 5 % and 10 % of the clients."""


def plan(quick: bool, seeds: int) -> Plan:
    return Plan(
        quick=quick,
        seeds=seeds,
        grid={"protocol": list(PROTOCOLS), "bot_ratio": BOT_RATIOS},
        fixed={"nodes": 8, "gateways": 2, "chained_clients": 20, "open_loop_clients": 20,
               "snapshots": 60 if quick else 400, "tau_min_us": 33.0},
    )


def rows(plan: Plan, progress: Progress) -> Iterator[Row]:
    fixed = plan.fixed
    clients = fixed["chained_clients"] + fixed["open_loop_clients"]
    points = grid(seed=range(1, plan.seeds + 1), **plan.grid)
    for index, point in enumerate(points, start=1):
        config = WorldConfig(
            protocol=point["protocol"], nodes=fixed["nodes"], gateways=fixed["gateways"],
            externals=clients, relays=fixed["chained_clients"], snapshots=fixed["snapshots"],
            seed=point["seed"],
        )
        observed = observe(config)
        bots = bots_among(observed.world.clients, round(point["bot_ratio"] * clients))
        found = detect(observed, bots)
        accepted = observed.accepted()
        progress(f"[{index}/{len(points)}] {point['protocol']} bots {len(bots)}/{clients} "
                 f"seed {point['seed']}: {found.false_positives} false positive(s), "
                 f"{found.false_negatives} false negative(s)")
        yield {
            "protocol": point["protocol"],
            "bot_ratio": point["bot_ratio"],
            "seed": point["seed"],
            "clients": clients,
            "bots": len(bots),
            "snapshots": len(observed.run.statuses),
            "accepted": len(accepted),
            "inconsistent_accepted": sum(
                not observed.verdicts[s.snapshot_id].consistent for s in accepted),
            "true_positives": found.true_positives,
            "false_positives": found.false_positives,
            "true_negatives": found.true_negatives,
            "false_negatives": found.false_negatives,
            "snapshots_with_false_positive": found.snapshots_with_false_positive,
        }


EXPERIMENT = Experiment(
    name="bot-detection",
    question="Which protocols' snapshots find the bots without accusing honest clients "
             "(the paper's Table 3)?",
    columns=("protocol", "bot_ratio", "seed", "clients", "bots", "snapshots", "accepted",
             "inconsistent_accepted", "true_positives", "false_positives", "true_negatives",
             "false_negatives", "snapshots_with_false_positive"),
    plan=plan,
    rows=rows,
)
