"""The simulator: determinism, ground truth, and the claims about each protocol.

Every scenario is small (a few nodes, a few hundred snapshots, well under a
second each); the same claims at scale are measured with ``beaver simulate``
and ``benchmarks/bench_sim.py``.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from simulator import US, Delay, Latencies, Workload, World, WorldConfig, simulate

SEEDS = range(5)

CHAINS = Workload(message_rate_hz=10_000, request_rate_hz=0, relay_share=0.5)
"""Busy in-group nodes, half their messages to relays: many fast external chains."""

SLOW_GATEWAYS = Latencies(
    gateway_leg=Delay(3.5 * US, 0.1 * US, 1.0,
                      tail_probability=0.2, tail_median=100 * US, tail_cap=400 * US),
)
"""A fifth of the gateway updates take tens to hundreds of microseconds."""

RACING = dict(
    nodes=6, gateways=4, snapshots=150, latencies=SLOW_GATEWAYS,
    workload=Workload(message_rate_hz=20_000, request_rate_hz=20_000, relay_share=0.5),
)
"""Slow gateway updates and busy traffic: external chains often overtake an update."""


def summary_of(**changes):
    return simulate(WorldConfig(**changes)).summary


def test_a_seed_determines_the_whole_run():
    first, again = (simulate(WorldConfig(snapshots=60, seed=7)) for _ in range(2))
    other = simulate(WorldConfig(snapshots=60, seed=8))
    assert replace(first.summary, wall_s=0) == replace(again.summary, wall_s=0)
    assert first.run.log.events == again.run.log.events
    assert first.run.log.captures == again.run.log.captures
    assert first.run.recorded == again.run.recorded
    assert first.run.log.events != other.run.log.events


def test_the_captured_state_is_the_ground_truth_position():
    world = World(WorldConfig(snapshots=30, seed=3))
    run = world.run()
    assert len(run.statuses) == 30
    for k in range(1, 31):
        states = world.coordinator.assemble(k).states
        assert {node: state.position for node, state in states.items()} == {
            node: positions[k - 1] for node, positions in run.log.captures.items()
        }


def test_every_message_is_delivered_and_every_snapshot_finishes():
    for protocol in ("beaver", "lai-yang", "chandy-lamport", "polling"):
        outcome = simulate(WorldConfig(protocol=protocol, nodes=6, snapshots=50))
        events = [e for sequence in outcome.run.log.events.values() for e in sequence]
        sent = {e for e in events if e >= 0}
        received = {~e for e in events if e < 0}
        assert sent == received and len(sent) == outcome.summary.messages > 0
        assert outcome.summary.complete == outcome.summary.snapshots == 50
        assert all(v.captured for v in outcome.verdicts)
        assert (outcome.summary.rejected_messages, outcome.summary.rejected_reports) == (0, 0)


@pytest.mark.parametrize("seed", SEEDS)
def test_beaver_accepts_no_inconsistent_snapshot(seed):
    s = summary_of(protocol="beaver", seed=seed)
    assert s.snapshots == s.complete == 200
    assert s.inconsistent_valid == 0
    assert s.extra_messages == 0
    assert s.channel_inexact == 0


def test_beaver_rejects_every_slow_update_and_only_those():
    outcome = simulate(WorldConfig(protocol="beaver", **RACING))
    tau = outcome.run.config.checked_tau_min
    slow = [s for s in outcome.run.statuses if s.update_time >= tau]
    assert len(slow) > 50, "the scenario must exercise slow gateway updates"
    assert all(s.valid is (s.update_time < tau) for s in outcome.run.statuses)
    assert outcome.summary.inconsistent > 0, "slow updates let external chains through"
    assert outcome.summary.inconsistent_valid == 0


def test_beaver_accepts_almost_all_when_tau_min_is_far_above_the_update_time():
    s = summary_of(protocol="beaver", tau_min=1000 * US)
    assert s.valid >= 0.99 * s.snapshots


def test_beaver_accepts_none_when_tau_min_is_below_any_update_time():
    floor = 2 * Latencies().gateway_leg.floor
    s = summary_of(protocol="beaver", tau_min=floor / 2)
    assert s.snapshots == 200 and s.valid == 0
    assert s.inconsistent_valid == 0


def test_beaver_with_a_wrong_tau_min_accepts_inconsistent_snapshots():
    world = dict(protocol="beaver", seed=2, **RACING)
    wrong = summary_of(controller_tau_min=10_000 * US, **world)
    right = summary_of(**world)
    assert wrong.valid == wrong.snapshots
    assert wrong.inconsistent_valid > 0
    assert right.inconsistent == wrong.inconsistent, "the bound checked does not change the run"
    assert right.inconsistent_valid == 0


def test_lai_yang_is_caught_by_external_chains_only():
    with_chains = summary_of(protocol="lai-yang")
    assert with_chains.inconsistent > 0
    for seed in SEEDS:
        without = summary_of(protocol="lai-yang", relays=0, seed=seed)
        assert without.inconsistent == 0
        assert without.channel_inexact == 0


def test_chandy_lamport_sends_n_n_minus_1_markers_per_snapshot():
    s = summary_of(protocol="chandy-lamport", nodes=5, snapshots=40)
    assert s.extra_messages == 5 * 4 * 40
    assert s.channel_inexact == 0


def test_chandy_lamport_is_caught_by_external_chains():
    caught = summary_of(protocol="chandy-lamport", nodes=4, snapshots=100, tau_min=5 * US,
                        workload=CHAINS)
    assert caught.inconsistent > 0
    clean = summary_of(protocol="chandy-lamport", nodes=4, snapshots=100, tau_min=5 * US,
                       workload=CHAINS, relays=0)
    assert clean.inconsistent == 0


def test_beaver_is_not_caught_where_chandy_lamport_is():
    s = summary_of(protocol="beaver", nodes=4, snapshots=100, tau_min=5 * US, workload=CHAINS)
    assert s.inconsistent_valid == 0


def test_polling_is_inconsistent_even_without_external_chains():
    s = summary_of(protocol="polling", relays=0)
    assert s.inconsistent > 0
    assert s.extra_messages == 0


@pytest.mark.parametrize(
    "changes, problem",
    [
        (dict(nodes=1), "at least 2 in-group nodes"),
        (dict(gateways=0), "needs at least 1 gateway"),
        (dict(protocol="paxos"), "unknown protocol"),
        (dict(tau_min=0.0), "tau_min must be > 0"),
        (dict(relays=9), "relays must be in 0..8"),
        (dict(window=32), "window must be in 1..31"),
        (dict(snapshots=-1), "snapshot count"),
    ],
)
def test_nonsense_worlds_are_refused(changes, problem):
    with pytest.raises(ValueError, match=problem):
        WorldConfig(**changes)


IN_TRANSIT = dict(
    nodes=3, gateways=1, externals=64, relays=32, window=31, snapshots=300, seed=3,
    workload=Workload(message_rate_hz=20_000, request_rate_hz=100_000, relay_share=0.5,
                      snapshot_rate_hz=1e7),
)
"""Snapshots as fast as the window allows: ids wrap the 6-bit code space every few
microseconds, while stamped packets are still in flight."""


def test_stamped_packets_in_flight_never_alias_to_newer_ids():
    outcome = simulate(WorldConfig(**IN_TRANSIT))
    summary = outcome.summary
    assert summary.snapshots == 300, "every snapshot starts: none waits for an unstarted id"
    assert summary.inconsistent == 0
    assert summary.overdue_packets == 0 and summary.unstarted_adoptions == 0
    assert summary.packet_lifetime_us == 1000
    assert summary.simulated_s >= 300 // 31 * 1e-3, "each window of ids waits out the lifetime"


def test_packets_slower_than_the_assumed_lifetime_are_named():
    outcome = simulate(WorldConfig(**IN_TRANSIT | dict(snapshots=100, packet_lifetime=20 * US)))
    summary = outcome.summary
    assert summary.overdue_packets == len(outcome.run.overdue) > 0
    assert set(summary.overdue_examples) <= set(outcome.run.overdue)
    log = outcome.run.log
    sent = {m for events in log.events.values() for m in events if m >= 0}
    assert set(outcome.run.overdue) <= sent
