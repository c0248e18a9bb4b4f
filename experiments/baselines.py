"""``baselines``: Beaver next to Lai-Yang, Chandy-Lamport and polling in the same worlds.

Every protocol of :data:`beaver.protocols.PROTOCOLS` runs over a grid
of in-group sizes, with and without external causal chains (in-group ->
relay -> gateway -> in-group; rate 0 means the out-group only sends
requests). Per run: the share of snapshots the oracle finds inconsistent,
the share inconsistent among those the protocol accepted, extra messages
(markers) per snapshot, and the share of complete snapshots whose channel
state is exactly the messages in flight.
"""

from __future__ import annotations

from collections.abc import Iterator

from beaver.protocols import PROTOCOLS
from experiments.base import Experiment, Plan, Progress, Row, fraction
from experiments.sweep import grid, outcomes
from simulator import Workload, WorldConfig

RELAY_SHARE = 0.2
MESSAGE_RATE_HZ = Workload().message_rate_hz


def plan(quick: bool, seeds: int) -> Plan:
    return Plan(
        quick=quick,
        seeds=seeds,
        grid={
            "protocol": list(PROTOCOLS),
            "nodes": [4, 8] if quick else [4, 16, 32],
            "relay_share": [0.0, RELAY_SHARE],
        },
        fixed={"snapshots": 60 if quick else 400, "gateways": 2, "externals": 8,
               "message_rate_hz": MESSAGE_RATE_HZ, "snapshot_rate_hz": 1000.0,
               "tau_min_us": 33.0},
    )


def rows(plan: Plan, progress: Progress) -> Iterator[Row]:
    points = grid(seed=range(1, plan.seeds + 1), **plan.grid)

    def config_of(point: dict) -> WorldConfig:
        chains = point["relay_share"] > 0
        return WorldConfig(
            protocol=point["protocol"],
            nodes=point["nodes"],
            gateways=plan.fixed["gateways"],
            externals=plan.fixed["externals"],
            relays=None if chains else 0,
            snapshots=plan.fixed["snapshots"],
            seed=point["seed"],
            workload=Workload(relay_share=point["relay_share"],
                              snapshot_rate_hz=plan.fixed["snapshot_rate_hz"]),
        )

    for point, config, outcome in outcomes(points, config_of, progress):
        s = outcome.summary
        chain_rate = config.nodes * MESSAGE_RATE_HZ * point["relay_share"] if s.relays else 0.0
        yield {
            "protocol": s.protocol,
            "nodes": s.nodes,
            "external_chain_rate_hz": chain_rate,
            "seed": s.seed,
            "snapshots": s.snapshots,
            "valid": s.valid,
            "complete": s.complete,
            "inconsistent": s.inconsistent,
            "inconsistent_valid": s.inconsistent_valid,
            "inconsistent_fraction": fraction(s.inconsistent, s.snapshots),
            "inconsistent_accepted_fraction": fraction(s.inconsistent_valid, s.valid),
            "extra_messages_per_snapshot": fraction(s.extra_messages, s.snapshots),
            "channel_exact_fraction": fraction(s.complete - s.channel_inexact, s.complete),
        }


EXPERIMENT = Experiment(
    name="baselines",
    question="How do Beaver, Lai-Yang, Chandy-Lamport and polling compare on consistency, "
             "extra messages and channel state, with and without external causal chains?",
    columns=("protocol", "nodes", "external_chain_rate_hz", "seed", "snapshots", "valid",
             "complete", "inconsistent", "inconsistent_valid", "inconsistent_fraction",
             "inconsistent_accepted_fraction", "extra_messages_per_snapshot",
             "channel_exact_fraction"),
    plan=plan,
    rows=rows,
)
