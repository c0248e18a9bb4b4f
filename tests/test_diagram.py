"""Space-time diagrams of stored snapshots, and the causal chain that breaks a cut."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_truth import RELAY_NAME, store_with, write_log

from analysis.diagram import chain_of, cut_times, draw_stored
from cli.main import main
from controller.coordinator.store import open_existing
from hosts.truth import INGROUP, RELAY
from oracle.chains import violating_chain
from simulator import WorldConfig, simulate
from testbed.simulated import logical_times
from testbed.truth import judge_run, read_log, stored_logs

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("protocol", ["lai-yang", "polling", "beaver"])
def test_a_chain_is_found_exactly_for_the_snapshots_the_oracle_finds_inconsistent(protocol):
    outcome = simulate(WorldConfig(protocol=protocol, nodes=4, externals=4, snapshots=40))
    log = outcome.run.log
    chains = {v.snapshot_id: violating_chain(log, v.snapshot_id) for v in outcome.verdicts}
    assert all(bool(chains[v.snapshot_id]) == (not v.consistent) for v in outcome.verdicts)
    for k, chain in chains.items():
        if chain:
            first_sender = next(p for p, events in log.events.items() if chain[0] in events)
            position = list(log.events[first_sender]).index(chain[0])
            assert first_sender in log.ingroup and position >= log.captures[first_sender][k - 1]


def test_logical_times_put_every_receive_after_its_send():
    log = simulate(WorldConfig(nodes=4, externals=4, snapshots=10)).run.log
    times = logical_times(log)
    sent = {e: times[p][i] for p, events in log.events.items()
            for i, e in enumerate(events) if e >= 0}
    for process, events in log.events.items():
        assert times[process] == sorted(set(times[process]))
        for i, event in enumerate(events):
            if event < 0:
                assert times[process][i] > sent[~event]


def relay_chain_run(tmp_path: Path):
    """a captures, then sends a:1 to the relay, whose message reaches b before b captures."""
    paths = [
        write_log(tmp_path, "a", INGROUP, ("capture", [1, 1]), ("send", "a:1")),
        write_log(tmp_path, RELAY_NAME, RELAY, ("receive", "a:1"), ("send", f"{RELAY_NAME}:1")),
        write_log(tmp_path, "b", INGROUP, ("receive", f"{RELAY_NAME}:1"), ("capture", [1, 1])),
    ]
    store, run = store_with(tmp_path / "db", {}, snapshots=1)
    with store:
        store.set_verdicts(run, judge_run(paths, store, run))
    return paths, run


def test_judging_an_emulated_run_stores_its_event_logs(tmp_path: Path):
    paths, run = relay_chain_run(tmp_path)
    with open_existing(tmp_path / "db") as store:
        stored = stored_logs(store.events(run))
    assert {(log.process, tuple(log.events)) for log in stored} == {
        (log.process, tuple(log.events)) for log in map(read_log, paths)}
    assert chain_of(stored, 1) == ["a:1", f"{RELAY_NAME}:1"]
    assert set(cut_times(stored, 1)) == {"a", "b"}


def test_the_diagram_of_an_inconsistent_snapshot_is_drawn(tmp_path: Path):
    _, run = relay_chain_run(tmp_path)
    with open_existing(tmp_path / "db") as store:
        path = draw_stored(store, run, 1, tmp_path / "chain.png")
    assert path.read_bytes()[:8] == PNG


def test_simulate_stores_a_run_that_show_draws(tmp_path: Path, capsys):
    db = tmp_path / "sim.db"
    assert main(["simulate", "--protocol", "lai-yang", "--nodes", "4", "--externals", "4",
                 "--snapshots", "200", "--db", str(db)]) == 0
    assert f"stored as run 1 in {db}" in capsys.readouterr().out
    with open_existing(db) as store:
        verdicts = store.verdicts(1)
        assert len(store.snapshot_rows(1)) == len(verdicts) > 0
    broken = [k for k, v in verdicts.items() if not v["consistent"]]
    assert broken, "lai-yang with relays should break a cut in 200 snapshots"
    png = tmp_path / "broken.png"
    assert main(["show", str(broken[0]), "--db", str(db), "--diagram", str(png)]) == 0
    assert png.read_bytes()[:8] == PNG
    assert main(["plot", "diagram", "--db", str(db), "--snapshot", str(broken[0]),
                 "--results", str(tmp_path / "results")]) == 0
    drawn = tmp_path / "results" / "diagram" / f"run-1-snapshot-{broken[0]}.png"
    assert drawn.read_bytes()[:8] == PNG


@pytest.mark.parametrize("argv, words", [
    (["show", "--diagram", "x.png"], "snapshot ID"),
    (["show", "1", "--diagram", "x.svg"], "FILE.png"),
    (["show", "1", "--diagram", "x.png"], "kept no event logs"),
    (["show", "99", "--diagram", "x.png"], "99"),
    (["plot", "diagram"], "--snapshot"),
])
def test_bad_diagram_requests_are_one_line_and_exit_2(tmp_path: Path, capsys, argv, words):
    store, _ = store_with(tmp_path / "db", {}, snapshots=1)
    store.close()
    argv = [*argv, "--db", str(tmp_path / "db")]
    if argv[0] == "show":
        argv[argv.index("--diagram") + 1] = str(tmp_path / argv[argv.index("--diagram") + 1])
    assert main(argv) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and words in error
