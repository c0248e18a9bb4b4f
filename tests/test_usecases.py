"""Use cases over snapshots: bot detection, deadlock detection, an invariant check.

The detectors read the snapshots the protocol core assembled; their answers
are checked against ground truth (bot labels, the lock service's record of
deadlocks) and against the oracle's verdict on each snapshot.
"""

from __future__ import annotations

import csv
import functools
from pathlib import Path

import pytest

from cli.main import main
from simulator import Workload, WorldConfig
from simulator.locks import Acquire, LockTable, LockWorld, Release, cycles
from usecases.bots import bots_among, detect, flagged, sessions
from usecases.deadlock import lock_tables, report, shown_deadlocks
from usecases.history import observe
from usecases.integration import check, two_transaction_holders

BOT_WORLD = {"nodes": 8, "gateways": 2, "externals": 40, "relays": 20, "snapshots": 60}


def lock_run(protocol: str, disorder: float = 0.0, seed: int = 1, snapshots: int = 300):
    config = WorldConfig(protocol=protocol, nodes=6, gateways=2, externals=24, relays=24,
                         snapshots=snapshots, seed=seed,
                         workload=Workload(message_rate_hz=50000.0, request_rate_hz=0.0))
    return observe(config, functools.partial(LockWorld, locks_per_node=1, disorder=disorder))


# -- the lock table -------------------------------------------------------------------------

def test_lock_table_grants_queues_and_hands_on_in_order():
    table = LockTable()
    a, b, c = (Acquire(client, 1, 7) for client in ("a", "b", "c"))
    assert table.handle(a) == [a]
    assert table.handle(b) == [] and table.handle(c) == []
    assert table.waits() == [(b, a), (c, a)]
    release = Release("a", 1, 7)
    assert table.handle(release) == [release, b]
    assert table.waits() == [(c, b)]


def test_release_by_a_client_that_does_not_hold_the_lock_changes_nothing():
    table = LockTable()
    holder = Acquire("a", 1, 3)
    table.handle(holder)
    stray = Release("b", 4, 3)
    assert table.handle(stray) == [stray]
    assert table.holder == {3: holder}


def test_cycles_finds_each_cycle_once_and_ignores_chains():
    a, b, c, d = (Acquire(client, 1, lock) for client, lock in zip("abcd", range(4), strict=True))
    holders = {"a": Acquire("a", 1, 9), "b": Acquire("b", 1, 8), "c": Acquire("c", 1, 7)}
    waits = [(a, holders["b"]), (b, holders["a"]), (c, holders["a"]), (d, holders["c"])]
    assert cycles(waits) == [frozenset({a, b})]
    assert cycles(waits[2:]) == []


def test_two_transaction_holders_reads_every_site():
    first, second = LockTable(), LockTable()
    first.handle(Acquire("a", 1, 0))
    second.handle(Acquire("a", 2, 1))
    second.handle(Acquire("b", 5, 2))
    assert two_transaction_holders({"n0": first, "n1": second}) == {"a"}


# -- bot detection ----------------------------------------------------------------------------

@pytest.mark.parametrize("seed", [1, 2])
def test_beaver_finds_every_bot_and_accuses_no_honest_client(seed: int):
    observed = observe(WorldConfig(protocol="beaver", seed=seed, **BOT_WORLD))
    bots = bots_among(observed.world.clients, 4)
    found = detect(observed, bots)
    assert (found.true_positives, found.false_positives, found.false_negatives) == (4, 0, 0)
    assert found.true_negatives == 36


@pytest.mark.parametrize("protocol", ["lai-yang", "polling"])
def test_false_accusations_come_only_from_inconsistent_snapshots(protocol: str):
    observed = observe(WorldConfig(protocol=protocol, seed=1, **BOT_WORLD))
    bots = bots_among(observed.world.clients, 2)
    tickets = sessions(observed, bots)
    wrong = [snapshot for snapshot, suspects in flagged(observed, observed.accepted(), tickets)
             if suspects - bots]
    assert wrong, f"{protocol} accused no honest client: the world has no external chains?"
    assert all(not observed.verdicts[s.snapshot_id].consistent for s in wrong)
    assert detect(observed, bots).false_positives > 0


def test_honest_clients_are_chained_or_fresh_and_bots_forge():
    observed = observe(WorldConfig(protocol="beaver", seed=1, **BOT_WORLD))
    bots = bots_among(observed.world.clients, 2)
    tickets = sessions(observed, bots)
    sender = tickets.traffic.sender
    by_client: dict[str, list[int]] = {}
    for request, ticket in tickets.presented.items():
        by_client.setdefault(sender[request], []).append(ticket)
    assert set(by_client) == set(observed.world.relays) | bots
    assert all(t < 0 for client in bots for t in by_client[client])
    assert all(tickets.traffic.receiver[t] == client
               for client in observed.world.relays for t in by_client[client])


def test_too_many_bots_is_refused():
    with pytest.raises(ValueError, match="bots must be in 0..2"):
        bots_among(["c0", "c1"], 3)


# -- deadlock detection and the invariant check -----------------------------------------------

def test_beaver_reports_no_phantom_deadlock_and_polling_does():
    beaver, polling = report(lock_run("beaver")), report(lock_run("polling"))
    assert beaver.snapshots_used > 250
    assert beaver.phantom_deadlocks == 0
    assert polling.phantom_deadlocks > 0


def test_phantoms_and_false_alarms_come_only_from_inconsistent_snapshots():
    observed = lock_run("lai-yang")
    real = {deadlock.waits for deadlock in observed.world.deadlocks}
    suspicious = [snapshot for snapshot, tables in lock_tables(observed, observed.accepted())
                  if set(shown_deadlocks(tables)) - real or two_transaction_holders(tables)]
    assert suspicious
    assert all(not observed.verdicts[s.snapshot_id].consistent for s in suspicious)
    assert check(observed).false_alarms > 0


def test_real_deadlocks_are_found_and_their_clients_stay_stuck():
    observed = lock_run("beaver", disorder=0.02)
    world = observed.world
    assert world.deadlocks, "no deadlock formed: raise disorder"
    outcome = report(observed)
    assert outcome.deadlocks_found == outcome.deadlocks_real == len(world.deadlocks)
    assert outcome.deadlocks_missed == 0 and outcome.phantom_deadlocks == 0
    stuck = set().union(*(deadlock.clients for deadlock in world.deadlocks))
    assert stuck <= set(world._busy)
    assert check(observed).false_alarms == 0


def test_lock_world_needs_clients():
    config = WorldConfig(nodes=4, externals=0)
    with pytest.raises(ValueError, match="needs out-group clients"):
        LockWorld(config)


# -- the experiments ---------------------------------------------------------------------------

def rows_of(root: Path, name: str) -> list[dict[str, str]]:
    with (root / name / f"{name}.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_bot_detection_quick_meets_table_3_and_plots(tmp_path: Path, capsys):
    assert main(["experiment", "bot-detection", "--quick", "--out", str(tmp_path)]) == 0
    rows = rows_of(tmp_path, "bot-detection")
    for row in rows:
        assert {"protocol", "false_positives", "false_negatives", "true_positives"} <= set(row)
    beaver = [row for row in rows if row["protocol"] == "beaver"]
    assert all(row["false_positives"] == row["false_negatives"] == "0" for row in beaver)
    assert sum(int(row["true_positives"]) for row in beaver) > 0
    for protocol in ("polling", "lai-yang"):
        assert any(int(row["false_positives"]) + int(row["false_negatives"]) > 0
                   for row in rows if row["protocol"] == protocol)
    capsys.readouterr()
    assert main(["plot", "bot-detection", "--results", str(tmp_path)]) == 0
    png = Path(capsys.readouterr().out.strip())
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_deadlock_quick_columns_and_outcome(tmp_path: Path, capsys):
    assert main(["experiment", "deadlock", "--quick", "--out", str(tmp_path)]) == 0
    rows = rows_of(tmp_path, "deadlock")
    assert {"protocol", "phantom_deadlocks", "deadlocks_found", "deadlocks_missed"} <= set(rows[0])
    assert all(row["phantom_deadlocks"] == "0" for row in rows if row["protocol"] == "beaver")
    assert sum(int(row["phantom_deadlocks"]) for row in rows if row["protocol"] == "polling") > 0
    capsys.readouterr()
    assert main(["plot", "deadlock", "--results", str(tmp_path)]) == 0
    assert Path(capsys.readouterr().out.strip()).is_file()


# -- the rule on emulated logs ------------------------------------------------------------------

def emulated_logs(relay_first: bool):
    """a sends a:1 to the relay, whose derived datagram relay:1 shows it to b; a captures
    after its send (consistent) or before it (the chain crosses the cut backwards)."""
    from testbed.truth import Event, ProcessLog

    capture = Event(0.0, "capture", snapshots=(1, 1))
    a = ProcessLog("a", "ingroup", [Event(1.0, "send", "a:1")])
    a.events.insert(0 if relay_first else 1, capture)
    relay = ProcessLog("relay", "relay", [Event(2.0, "receive", "a:1"),
                                          Event(3.0, "send", "relay:1")])
    b = ProcessLog("b", "ingroup", [Event(4.0, "receive", "relay:1"),
                                    Event(5.0, "capture", snapshots=(1, 1))])
    return [a, relay, b]


def test_the_rule_on_emulated_logs_flags_only_a_chain_across_the_cut():
    from experiments.emulated_bot_detection import flagged as flagged_emulated

    assert flagged_emulated(emulated_logs(relay_first=False), 1) == set()
    assert flagged_emulated(emulated_logs(relay_first=True), 1) == {"relay"}
