"""The simulator under injected faults: Beaver accepts no inconsistent snapshot unless a
stated assumption is broken, and the run says when it is."""

from __future__ import annotations

from dataclasses import replace

import pytest

from simulator import Faults, Workload, WorldConfig, simulate

BUSY = dict(
    nodes=6, gateways=3, snapshots=120,
    workload=Workload(message_rate_hz=20_000, request_rate_hz=20_000, relay_share=0.5,
                      snapshot_rate_hz=4096),
)
"""Busy traffic and many fast external chains: a broken rule shows up within a short run."""

SAFE_FAULTS = {
    "control loss": (Faults(control_loss=0.1), "control_lost"),
    "control duplicates": (Faults(control_duplicate=0.3), "control_duplicated"),
    "control reorder": (Faults(control_reorder=True), "events"),
    "gateway crash, no id": (Faults(gateway_crash_rate_hz=400), "gateway_crashes"),
    "node crash": (Faults(node_crash_rate_hz=300), "node_crashes"),
    "data loss": (Faults(data_loss=0.1), "data_lost"),
    "data duplicates": (Faults(data_duplicate=0.2), "data_duplicated"),
    "clock skew": (Faults(clock_skew=50e-6), "events"),
    "everything at once": (Faults(control_loss=0.05, control_duplicate=0.05,
                                  control_reorder=True, gateway_crash_rate_hz=100,
                                  node_crash_rate_hz=50, data_loss=0.05, data_duplicate=0.05,
                                  clock_skew=20e-6), "failed_updates"),
}


@pytest.mark.parametrize("name", SAFE_FAULTS)
@pytest.mark.parametrize("protocol", ["beaver", "lai-yang", "chandy-lamport", "polling"])
def test_every_snapshot_finishes_under_each_fault(name, protocol):
    faults, _ = SAFE_FAULTS[name]
    s = simulate(WorldConfig(protocol=protocol, faults=faults, seed=3,
                             **{**BUSY, "snapshots": 40})).summary
    assert s.snapshots == s.requested == 40 and s.complete == 40


@pytest.mark.parametrize("name", SAFE_FAULTS)
def test_beaver_accepts_no_inconsistent_snapshot_under_faults_it_assumes(name):
    faults, evidence = SAFE_FAULTS[name]
    for seed in (1, 2):
        s = simulate(WorldConfig(faults=faults, seed=seed, **BUSY)).summary
        assert getattr(s, evidence) > 0, f"the scenario must exercise {name}"
        assert s.snapshots == s.complete == 120
        assert s.inconsistent_valid == 0 and s.inconsistent_revoked == 0
        assert s.channel_inexact == 0
        assert not s.assumption_broken


def test_lost_control_messages_use_the_coordinators_timeouts_and_retransmission():
    s = simulate(WorldConfig(faults=Faults(control_loss=0.2), seed=4, **BUSY)).summary
    assert s.failed_updates > 0 and s.retransmitted > 0 and s.report_retransmissions > 0
    assert s.valid < s.snapshots, "a failed update makes its snapshot invalid"
    assert s.inconsistent_valid == 0


def test_a_gateway_that_reports_the_older_id_it_restarted_with_has_its_harm_revoked():
    faults = Faults(gateway_crash_rate_hz=400, gateway_restart="old-id")
    for seed in (1, 2):
        s = simulate(WorldConfig(faults=faults, seed=seed, **BUSY)).summary
        assert s.gateway_rollbacks > 0 and s.assumption_broken
        assert s.revoked > 0
        assert s.inconsistent_valid == 0


def test_a_gateway_stamping_an_older_id_unannounced_is_flagged():
    faults = Faults(gateway_crash_rate_hz=1000, gateway_restart="silent-old-id")
    s = simulate(WorldConfig(faults=faults, seed=1, **BUSY)).summary
    assert s.gateway_rollbacks > 0 and s.assumption_broken
    assert s.revoked == 0, "the coordinator cannot know"


def test_short_chains_are_flagged_and_a_learned_tau_min_revokes_what_they_break():
    short = Faults(chain_violation_share=0.3)
    blind = simulate(WorldConfig(faults=short, seed=2, **BUSY)).summary
    assert blind.short_chains > 0 and blind.assumption_broken
    learned = simulate(WorldConfig(faults=replace(short, learn_tau_min=True), seed=2,
                                   **BUSY)).summary
    assert learned.revoked > 0
    assert learned.inconsistent_valid == 0


def test_a_seed_determines_a_run_with_faults():
    faults = SAFE_FAULTS["everything at once"][0]
    first, again = (simulate(WorldConfig(faults=faults, seed=9, **BUSY)) for _ in range(2))
    assert replace(first.summary, wall_s=0) == replace(again.summary, wall_s=0)
    assert first.run.log.events == again.run.log.events


@pytest.mark.parametrize(("changes", "problem"), [
    ({"control_loss": 0.95}, "control_loss"),
    ({"data_duplicate": -0.1}, "data_duplicate"),
    ({"gateway_crash_rate_hz": float("inf")}, "gateway_crash_rate_hz"),
    ({"clock_skew": float("nan")}, "clock_skew"),
    ({"gateway_restart": "maybe"}, "gateway_restart"),
    ({"update_timeout": 0.0}, "update_timeout"),
])
def test_nonsense_faults_are_refused(changes, problem):
    with pytest.raises(ValueError, match=problem):
        Faults(**changes)
