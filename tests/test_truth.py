"""Ground-truth event logs: what the runtime and the relay write, and the oracle reading them.

Hand-written logs check the reader and the :class:`~oracle.EventLog`
it builds (a consistent run, a causal chain through a relay, traffic still
in flight at the end, logs no execution produces); the recorded channel
state comes from a real :class:`~controller.coordinator.store.Store`. The runtime and
the relay are driven over loopback with their logs on.
"""

from __future__ import annotations

import itertools
import json
import threading
from pathlib import Path
from typing import Any

import pytest
from test_hosts_fakes import Peer
from test_hosts_runtime import SPACE, Harness

from cli.runs.summary import summarize
from cli.runs.text import format_summary
from controller.coordinator.store import FinishedSnapshot, Store, StoredInFlight, StoredLocal
from hosts import wire
from hosts.relay import Relay
from hosts.services.transfers import IdSet
from hosts.truth import INGROUP, MESSAGE_ID, RELAY, TruthLog
from oracle import Verdict
from testbed.truth import TruthLogError, judge_run, read_log

RELAY_NAME = "relay@10.0.9.1:9100"


CLOCK = itertools.count(100)
"""Event times, increasing in the order the tests write logs (senders' files first)."""


def write_log(directory: Path, process: str, role: str, *events: tuple[str, Any]) -> Path:
    """A log file with ``events`` as (kind, id or [first, last])."""
    path = directory / f"{process}.truth"
    lines = [{"process": process, "role": role}]
    lines += [{"n": n, "t": float(next(CLOCK)), kind: what}
              for n, (kind, what) in enumerate(events, start=1)]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def store_with(path: Path, in_flight: dict[int, list[str]], snapshots: int) -> tuple[Store, int]:
    """A store holding ``snapshots`` complete snapshots with the given in-flight message ids."""
    store = Store(path)
    run = store.new_run("beaver", {}, 1000.0, "given")
    for k in range(1, snapshots + 1):
        store.add_snapshot(run, "beaver", FinishedSnapshot(
            snapshot_id=k, t0=float(k), t1=float(k), valid=True, complete=True,
            completed_at=float(k), states=(StoredLocal("a", float(k), {}),),
            in_flight=tuple(StoredInFlight("b", "a", float(k), {"kind": "credit", MESSAGE_ID: m})
                            for m in in_flight.get(k, [])),
            gateways=(),
        ))
    return store, run


def test_a_consistent_run_with_exact_channel_state(tmp_path: Path) -> None:
    logs = [
        write_log(tmp_path, "a", INGROUP, ("send", "a:1"), ("capture", [1, 1]),
                  ("send", "a:2"), ("capture", [2, 2])),
        write_log(tmp_path, "b", INGROUP, ("receive", "a:1"), ("capture", [1, 2]),
                  ("receive", "a:2")),
    ]
    store, run = store_with(tmp_path / "db", {2: ["a:2"]}, snapshots=2)
    with store:
        verdicts = judge_run(logs, store, run)
    assert [(v.snapshot_id, v.consistent, v.channel_exact) for v in verdicts] == [
        (1, True, True), (2, True, True)]
    assert all(v.captured for v in verdicts)


def test_the_recorded_channel_state_is_compared_message_by_message(tmp_path: Path) -> None:
    logs = [
        write_log(tmp_path, "a", INGROUP, ("send", "a:1"), ("send", "a:2"), ("capture", [1, 1])),
        write_log(tmp_path, "b", INGROUP, ("receive", "a:1"), ("capture", [1, 1]),
                  ("receive", "a:2")),
    ]
    store, run = store_with(tmp_path / "db", {1: ["a:1"]}, snapshots=1)
    with store:
        (verdict,) = judge_run(logs, store, run)
    assert verdict.consistent and not verdict.channel_exact
    assert (verdict.channel_missing, verdict.channel_extra) == (1, 1)


def test_a_causal_chain_through_a_relay_is_inconsistent(tmp_path: Path) -> None:
    logs = [
        write_log(tmp_path, "a", INGROUP, ("capture", [1, 1]), ("send", "a:1")),
        write_log(tmp_path, RELAY_NAME, RELAY, ("receive", "a:1"), ("send", f"{RELAY_NAME}:1")),
        write_log(tmp_path, "b", INGROUP, ("receive", f"{RELAY_NAME}:1"), ("capture", [1, 1])),
    ]
    store, run = store_with(tmp_path / "db", {}, snapshots=1)
    with store:
        (verdict,) = judge_run(logs, store, run)
    assert not verdict.consistent
    assert verdict.channel_exact, "a message through the out-group is no in-group channel state"


def test_a_relayed_message_sent_before_the_cut_is_consistent(tmp_path: Path) -> None:
    logs = [
        write_log(tmp_path, "a", INGROUP, ("send", "a:1"), ("capture", [1, 1])),
        write_log(tmp_path, RELAY_NAME, RELAY, ("receive", "a:1"), ("send", f"{RELAY_NAME}:1")),
        write_log(tmp_path, "b", INGROUP, ("receive", f"{RELAY_NAME}:1"), ("capture", [1, 1])),
    ]
    store, run = store_with(tmp_path / "db", {}, snapshots=1)
    with store:
        assert judge_run(logs, store, run)[0].consistent


def test_messages_still_in_flight_at_the_end_are_dropped(tmp_path: Path) -> None:
    """Sent, never received: in no channel state, and no error."""
    logs = [
        write_log(tmp_path, "a", INGROUP, ("capture", [1, 1]), ("send", "a:1"), ("send", "a:2")),
        write_log(tmp_path, RELAY_NAME, RELAY, ("receive", "a:1")),
        write_log(tmp_path, "b", INGROUP, ("capture", [1, 1])),
    ]
    store, run = store_with(tmp_path / "db", {}, snapshots=1)
    with store:
        (verdict,) = judge_run(logs, store, run)
    assert verdict.consistent and verdict.channel_exact


def test_a_snapshot_a_node_never_captured_is_judged_to_the_end_of_its_log(
    tmp_path: Path,
) -> None:
    logs = [
        write_log(tmp_path, "a", INGROUP, ("capture", [1, 1]), ("send", "a:1")),
        write_log(tmp_path, "b", INGROUP, ("receive", "a:1")),
    ]
    store, run = store_with(tmp_path / "db", {}, snapshots=1)
    with store:
        (verdict,) = judge_run(logs, store, run)
    assert not verdict.captured and not verdict.consistent


@pytest.mark.parametrize(("logs", "complaint"), [
    ([("a", INGROUP, ("capture", [2, 2]))], "captured snapshots 2..2 after snapshot 0"),
    ([(RELAY_NAME, RELAY, ("capture", [1, 1]))], "is a relay and takes no snapshots"),
    ([("a", INGROUP, ("receive", "x:1"))], "never sent"),
    ([("a", INGROUP, ("send", "a:1")), ("b", INGROUP, ("receive", "a:1")),
      ("c", INGROUP, ("receive", "a:1"))], "received twice"),
])
def test_impossible_logs_are_refused(tmp_path: Path, logs: list[tuple[Any, ...]],
                                     complaint: str) -> None:
    paths = [write_log(tmp_path, process, role, *events) for process, role, *events in logs]
    store, run = store_with(tmp_path / "db", {}, snapshots=1)
    with store, pytest.raises(TruthLogError, match=complaint):
        judge_run(paths, store, run)


def test_clocks_never_order_events_a_receive_stamped_before_its_send_is_judged(
    tmp_path: Path,
) -> None:
    """A relay read the clock once per batch, so its receive was stamped before the send."""
    sender = tmp_path / "a.truth"
    sender.write_text('{"process":"a","role":"ingroup"}\n{"n":1,"t":4.9,"capture":[1,1]}\n'
                      '{"n":2,"t":5.0,"send":"a:1"}\n')
    relay = tmp_path / "relay.truth"
    relay.write_text(f'{{"process":"{RELAY_NAME}","role":"relay"}}\n'
                     '{"n":1,"t":4.0,"receive":"a:1"}\n'
                     f'{{"n":2,"t":4.0,"send":"{RELAY_NAME}:1"}}\n')
    receiver = tmp_path / "b.truth"
    receiver.write_text('{"process":"b","role":"ingroup"}\n'
                        f'{{"n":1,"t":3.0,"receive":"{RELAY_NAME}:1"}}\n'
                        '{"n":2,"t":3.5,"capture":[1,1]}\n')
    store, run = store_with(tmp_path / "db", {}, snapshots=1)
    with store:
        [verdict] = judge_run([sender, relay, receiver], store, run)
    assert verdict.captured and not verdict.consistent, "the chain a -> relay -> b is seen"


@pytest.mark.parametrize(("numbers", "complaint"), [
    ((1, 3), "line 3 is event 3 of a, expected 2: a line is missing"),
    ((1, 1), "line 3 is event 1 of a, expected 2"),
    ((None, 2), "line 2 is event None of a, expected 1"),
])
def test_a_log_out_of_program_order_cannot_be_judged_and_says_where(
    tmp_path: Path, numbers: tuple[Any, Any], complaint: str,
) -> None:
    path = tmp_path / "a.truth"
    events = [{"n": n, "t": 1.0, "send": f"a:{i}"} for i, n in enumerate(numbers, start=1)]
    path.write_text('{"process":"a","role":"ingroup"}\n'
                    + "".join(json.dumps({k: v for k, v in e.items() if v is not None}) + "\n"
                              for e in events))
    with pytest.raises(TruthLogError, match=complaint) as caught:
        read_log(path)
    assert str(path) in str(caught.value)


@pytest.mark.parametrize(("text", "complaint"), [
    ('{"t":1.0,"send":"a:1"}\n', "does not name a process"),
    ('{"process":"a","role":"ingroup"}\n{"t":1.0,"sent":"a:1"}\n', "line 2 is no send"),
    ('{"process":"a","role":"ingroup"}\n{"t":1.0,"capture":[3,2]}\n', "line 2 is no send"),
    ('{"process":"a","role":"ingroup"}\n{"send":"a:1"}\n', "line 2 is not an event"),
    ('{"process":"a","role":"ingroup"}\n{"t":1.0,"se', "Unterminated string"),
])
def test_malformed_logs_name_the_file_and_the_fault(tmp_path: Path, text: str,
                                                     complaint: str) -> None:
    path = tmp_path / "a.truth"
    path.write_text(text)
    with pytest.raises(TruthLogError, match=complaint) as caught:
        read_log(path)
    assert str(path) in str(caught.value)


def test_an_in_flight_record_without_a_message_id_is_refused(tmp_path: Path) -> None:
    logs = [write_log(tmp_path, "a", INGROUP, ("capture", [1, 1]))]
    store, run = store_with(tmp_path / "db", {}, snapshots=1)
    with store:
        store.add_snapshot(run, "beaver", FinishedSnapshot(
            snapshot_id=2, t0=2.0, t1=2.0, valid=True, complete=True, completed_at=2.0,
            states=(), in_flight=(StoredInFlight("b", "a", 2.0, {"kind": "credit"}),),
            gateways=()))
        with pytest.raises(TruthLogError, match="without a message_id"):
            judge_run(logs, store, run)


def test_verdicts_are_stored_per_snapshot_and_absent_before_judging(tmp_path: Path) -> None:
    logs = [
        write_log(tmp_path, "a", INGROUP, ("capture", [1, 1]), ("send", "a:1")),
        write_log(tmp_path, "b", INGROUP, ("receive", "a:1"), ("capture", [1, 2])),
        write_log(tmp_path, "c", INGROUP, ("capture", [1, 2])),
    ]
    store, run = store_with(tmp_path / "db", {}, snapshots=2)
    with store:
        assert store.verdicts(run) == {}, "a database never judged has no verdicts table"
        store.set_verdicts(run, judge_run(logs, store, run))
    with Store(tmp_path / "db") as reopened:
        stored = reopened.verdicts(run)
    assert sorted(stored) == [1, 2]
    assert not stored[1]["consistent"] and stored[1]["captured"]
    assert stored[2] == {"captured": False, "consistent": True, "channel_exact": True,
                         "channel_missing": 0, "channel_extra": 0}


# -- the writers --------------------------------------------------------------------------------


def lines_of(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_the_runtime_logs_ids_sends_receives_and_the_capture_before_its_trigger(
    tmp_path: Path,
) -> None:
    harness = Harness("beaver")
    truth = TruthLog(tmp_path / "a.truth", "a", INGROUP)
    harness.runtime.truth = truth
    try:
        harness.peer.send({"kind": "data", "n": 1, MESSAGE_ID: "b:1"}, harness.address,
                          code=SPACE.to_wire(0))
        first, _ = harness.peer.receive(harness.pump, "echo of the first datagram")
        harness.peer.send({"kind": "data", "n": 2, MESSAGE_ID: "b:2"}, harness.address,
                          code=SPACE.to_wire(3))
        second, _ = harness.peer.receive(harness.pump, "echo of the datagram stamped 3")
        harness.peer.send({"kind": "data", "n": 3}, harness.address, code=SPACE.to_wire(3))
        harness.peer.receive(harness.pump, "echo of a datagram without an id")
        harness.notify(5)
    finally:
        truth.close()
        harness.close()
    assert (first[MESSAGE_ID], second[MESSAGE_ID]) == ("a:1", "a:2")
    lines = lines_of(tmp_path / "a.truth")
    events = [{k: v for k, v in line.items() if k not in ("t", "n")} for line in lines]
    assert [line["n"] for line in lines[1:]] == list(range(1, len(lines)))
    assert events == [
        {"process": "a", "role": "ingroup"},
        {"receive": "b:1"}, {"send": "a:1"},
        {"capture": [1, 3]}, {"receive": "b:2"}, {"send": "a:2"},
        {"send": "a:3"},
        {"capture": [4, 5]},
    ]
    times = [line["t"] for line in lines[1:]]
    assert times == sorted(times)


def test_the_relay_logs_the_original_and_the_datagram_it_derives(tmp_path: Path) -> None:
    target, sender = Peer("127.0.0.50"), Peer("127.0.0.51")
    sock = wire.open_udp(("127.0.0.52", 0))
    truth = TruthLog(tmp_path / "relay.truth", RELAY_NAME, RELAY)
    relay = Relay(sock, target.address, delay=0.0, truth=truth)
    thread = threading.Thread(target=relay.run, daemon=True)
    thread.start()
    try:
        sender.send({"kind": "credit", "amount": 3, MESSAGE_ID: "a:7"}, sock.getsockname())
        relayed, _ = target.receive(lambda: None, "the relayed datagram")
        sender.send({"kind": "credit", "amount": 4}, sock.getsockname())
        target.receive(lambda: None, "the relayed datagram without an id")
    finally:
        relay.request_stop()
        thread.join(timeout=5)
        truth.close()
        sock.close()
        target.close()
        sender.close()
    assert not thread.is_alive()
    assert relayed == {"kind": "credit", "amount": 3, MESSAGE_ID: f"{RELAY_NAME}:1"}
    assert [{k: v for k, v in line.items() if k not in ("t", "n")}
            for line in lines_of(tmp_path / "relay.truth")] == [
        {"process": RELAY_NAME, "role": "relay"},
        {"receive": "a:7"}, {"send": f"{RELAY_NAME}:1"},
    ]



def test_the_run_summary_counts_verdicts_among_all_accepted_and_complete(tmp_path: Path) -> None:
    """Snapshot 1 accepted and inconsistent; 2 invalid, inconsistent, inexact; 3 incomplete."""
    empty = {"balances": {}, "debited": IdSet().to_json(), "credited": IdSet().to_json()}
    with Store(tmp_path / "db") as store:
        run = store.new_run("beaver", {"initial_total": 0}, 1000.0, "given")
        for k, valid, complete in [(1, True, True), (2, False, True), (3, True, False)]:
            store.add_snapshot(run, "beaver", FinishedSnapshot(
                snapshot_id=k, t0=0.0, t1=0.0, valid=valid, complete=complete,
                completed_at=None, states=(StoredLocal("a", 0.0, empty),), in_flight=(),
                gateways=()))
        assert summarize(store, run, tmp_path / "db")["inconsistent"] is None, "not judged yet"
        store.set_verdicts(run, [
            Verdict(1, True, False, True, 0, 0), Verdict(2, True, False, False, 1, 0),
            Verdict(3, True, True, False, 2, 0)])
        summary = summarize(store, run, tmp_path / "db")
    assert (summary["judged"], summary["inconsistent"], summary["inconsistent_valid"],
            summary["channel_inexact"]) == (3, 2, 1, 1)
    assert summary["inconsistent_snapshots"] == [1, 2]
    assert "2 of 3 snapshots causally inconsistent, 1 of 1 accepted" in format_summary(summary)
