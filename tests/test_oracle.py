"""The ground-truth oracle on hand-built logs, and against a brute-force vector-clock check."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oracle import EventLog, LogError, Verdict, _covered, _Pass, _Replay, judge


def verdict(log: EventLog, k: int, recorded: dict[int, set[int]] | None = None) -> Verdict:
    return judge(log, recorded or {}, k)[k - 1]


def two_nodes() -> EventLog:
    return EventLog(["a", "b"])


def test_a_message_inside_both_cuts_is_consistent_and_not_in_flight():
    log = two_nodes()
    log.send("a", 1)
    log.receive("b", 1)
    log.capture("a", 1)
    log.capture("b", 1)
    v = verdict(log, 1)
    assert v.captured and v.consistent and v.channel_exact


def test_a_post_snapshot_send_received_before_the_snapshot_is_inconsistent():
    log = two_nodes()
    log.capture("a", 1)
    log.send("a", 1)
    log.receive("b", 1)
    log.capture("b", 1)
    assert not verdict(log, 1).consistent


def test_a_chain_through_an_out_group_relay_is_inconsistent():
    log = two_nodes()
    log.capture("a", 1)
    log.send("a", 1)
    log.receive("relay", 1)
    log.send("relay", 2)
    log.receive("b", 2)
    log.capture("b", 1)
    v = verdict(log, 1)
    assert not v.consistent
    assert v.channel_exact, "messages through the out-group are no in-group channel state"


def test_a_relay_message_sent_before_it_heard_from_the_cut_is_consistent():
    log = two_nodes()
    log.send("relay", 2)
    log.capture("a", 1)
    log.send("a", 1)
    log.receive("relay", 1)
    log.receive("b", 2)
    log.capture("b", 1)
    assert verdict(log, 1).consistent


def test_out_group_processes_pass_causality_through_several_hops():
    log = two_nodes()
    log.capture("a", 1)
    log.send("a", 1)
    log.receive("x", 1)
    log.send("x", 2)
    log.receive("y", 2)
    log.send("y", 3)
    log.receive("b", 3)
    log.capture("b", 1)
    assert not verdict(log, 1).consistent


def test_a_chain_through_an_in_group_node_after_its_snapshot_is_consistent():
    log = EventLog(["a", "b", "c"])
    log.capture("a", 1)
    log.send("a", 1)
    log.capture("c", 1)
    log.receive("c", 1)
    log.send("c", 2)
    log.capture("b", 1)
    log.receive("b", 2)
    assert verdict(log, 1).consistent


def test_channel_state_must_be_exactly_the_messages_crossing_the_cut():
    log = two_nodes()
    log.send("a", 1)
    log.capture("a", 1)
    log.capture("b", 1)
    log.receive("b", 1)
    assert verdict(log, 1, {1: {1}}).channel_exact
    missing = verdict(log, 1, {})
    assert (missing.channel_exact, missing.channel_missing, missing.channel_extra) == (False, 1, 0)
    extra = verdict(log, 1, {1: {1, 7}})
    assert (extra.channel_exact, extra.channel_missing, extra.channel_extra) == (False, 0, 1)
    assert verdict(log, 1).consistent


def test_one_capture_for_several_snapshots_covers_each_of_them():
    log = two_nodes()
    log.send("a", 1)
    log.capture("a", 3)
    log.send("a", 2)
    log.capture("b", 2)
    log.receive("b", 1)
    log.receive("b", 2)
    log.capture("b", 3)
    verdicts = judge(log, {1: {1}, 2: set(), 3: set()}, 3)
    assert [v.consistent for v in verdicts] == [True, True, False]
    assert [v.channel_exact for v in verdicts] == [True, False, True]
    assert [v.channel_missing for v in verdicts] == [0, 1, 0]


def test_a_snapshot_some_node_never_captured_is_reported_so():
    log = two_nodes()
    log.capture("a", 2)
    log.capture("b", 1)
    verdicts = judge(log, {}, 2)
    assert [v.captured for v in verdicts] == [True, False]


@pytest.mark.parametrize(
    "build, problem",
    [
        (lambda log: log.receive("b", 5), "never sent"),
        (lambda log: (log.send("a", 1), log.send("b", 1)), "sent twice"),
        (lambda log: (log.send("a", 1), log.receive("b", 1), log.receive("a", 1)),
         "received twice"),
        (lambda log: (log.receive("a", 2), log.send("a", 1), log.receive("b", 1),
                      log.send("b", 2)), "causal cycle"),
    ],
)
def test_impossible_logs_are_refused(build, problem):
    log = two_nodes()
    build(log)
    with pytest.raises(LogError, match=problem):
        judge(log, {}, 0)


def test_only_in_group_nodes_capture():
    with pytest.raises(LogError, match="not an in-group node"):
        two_nodes().capture("relay", 1)


# -- brute force: vector clocks over every pair of events ---------------------------------

INGROUP = ("a", "b", "c")
PROCESSES = (*INGROUP, "x", "y")


@st.composite
def executions(draw):
    """A random execution, built in one global order so that every log is possible."""
    rng = draw(st.randoms(use_true_random=False))
    log = EventLog(INGROUP)
    pending: dict[str, list[int]] = {p: [] for p in PROCESSES}
    next_message = 0
    for _ in range(draw(st.integers(0, 80))):
        roll = rng.random()
        waiting = [p for p in PROCESSES if pending[p]]
        if roll < 0.15:
            node = rng.choice(INGROUP)
            log.capture(node, log.level(node) + rng.choice((1, 1, 2)))
        elif roll < 0.55 or not waiting:
            sender, receiver = rng.sample(PROCESSES, 2)
            next_message += 1
            log.send(sender, next_message)
            pending[receiver].append(next_message)
        else:
            receiver = rng.choice(waiting)
            log.receive(receiver, pending[receiver].pop(rng.randrange(len(pending[receiver]))))
    snapshots = max(log.level(node) for node in INGROUP)
    for node in INGROUP:
        log.capture(node, snapshots)
    for process, messages in pending.items():
        for message in messages:
            log.receive(process, message)
    return log, snapshots


def brute_force(log: EventLog, snapshots: int) -> list[tuple[bool, set[int]]]:
    """Per snapshot: consistency by vector clocks, and the true in-flight set."""
    processes = sorted(log.events)
    clocks: dict[tuple[str, int], dict[str, int]] = {}
    sent_clock: dict[int, dict[str, int]] = {}
    where: dict[int, dict[str, tuple[str, int]]] = {}
    position = dict.fromkeys(processes, 0)
    progress = True
    while progress:
        progress = False
        for process in processes:
            events = log.events[process]
            while position[process] < len(events):
                i = position[process]
                event = events[i]
                clock = dict(clocks[(process, i - 1)]) if i else dict.fromkeys(processes, 0)
                if event < 0:
                    if ~event not in sent_clock:
                        break
                    for p, count in sent_clock[~event].items():
                        clock[p] = max(clock[p], count)
                    where.setdefault(~event, {})["receive"] = (process, i)
                clock[process] = i + 1
                clocks[(process, i)] = clock
                if event >= 0:
                    sent_clock[event] = clock
                    where.setdefault(event, {})["send"] = (process, i)
                position[process] += 1
                progress = True

    def cut(node: str, k: int) -> int:
        positions = log.captures[node]
        return positions[k - 1] if k <= len(positions) else len(log.events.get(node, ()))

    results = []
    for k in range(1, snapshots + 1):
        consistent = all(
            clocks[(q, i)].get(p, 0) <= cut(p, k)
            for q in INGROUP for i in range(cut(q, k))
            for p in INGROUP
        )
        in_flight = {
            message for message, ends in where.items()
            if ends["send"][0] in INGROUP and ends["receive"][0] in INGROUP
            and ends["send"][1] < cut(ends["send"][0], k)
            and ends["receive"][1] >= cut(ends["receive"][0], k)
        }
        results.append((consistent, in_flight))
    return results


@settings(max_examples=200, deadline=None)
@given(executions(), st.data())
def test_the_one_pass_oracle_agrees_with_vector_clocks(execution, data):
    log, snapshots = execution
    truth = brute_force(log, snapshots)
    recorded = {
        k: data.draw(st.sets(st.sampled_from(sorted(in_flight | {0})))) if in_flight else set()
        for k, (_, in_flight) in enumerate(truth, start=1)
    }
    verdicts = judge(log, recorded, snapshots)
    for (consistent, in_flight), v in zip(truth, verdicts, strict=True):
        assert v.consistent == consistent
        got = recorded[v.snapshot_id]
        assert v.channel_exact == (got == in_flight)
        assert (v.channel_missing, v.channel_extra) == (len(in_flight - got), len(got - in_flight))


# -- the vectorised pass against the event-by-event replay ----------------------------------

def replayed(log: EventLog, snapshots: int) -> tuple[list[bool], dict[int, set[int]]]:
    """What the replay finds: which snapshots are inconsistent, and the in-flight sets."""
    replay = _Replay(log, snapshots)
    replay.run()
    return _covered(replay.inconsistent_ranges, snapshots), replay.in_flight


@settings(max_examples=200, deadline=None)
@given(executions())
def test_the_vectorised_pass_vouches_for_a_log_in_send_order_and_agrees_with_the_replay(
        execution):
    log, snapshots = execution
    passed = _Pass.of(log, snapshots)
    assert passed is not None, "ids handed out in time order prove a causal order"
    assert (_covered(passed.inconsistent_ranges, snapshots), passed.in_flight) == replayed(
        log, snapshots)


@settings(max_examples=200, deadline=None)
@given(executions(), st.randoms(use_true_random=False))
def test_a_log_whose_ids_are_shuffled_is_judged_the_same(execution, rng):
    """Ids out of time order defeat the pass's witness: then the replay judges."""
    log, snapshots = execution
    sent = sorted({e for events in log.events.values() for e in events if e >= 0})
    renamed = dict(zip(sent, rng.sample(range(1, 4 * len(sent) + 2), len(sent)), strict=True))
    shuffled = EventLog(INGROUP)
    for process, events in log.events.items():
        for event in events:
            if event >= 0:
                shuffled.send(process, renamed[event])
            else:
                shuffled.receive(process, renamed[~event])
    shuffled.captures = {node: list(positions) for node, positions in log.captures.items()}
    original = judge(log, {}, snapshots)
    moved = judge(shuffled, {k: {renamed[m] for m in found}
                             for k, found in replayed(log, snapshots)[1].items()}, snapshots)
    assert [v.consistent for v in moved] == [v.consistent for v in original]
    assert all(v.channel_exact for v in moved)


def test_a_log_the_witness_cannot_vouch_for_goes_to_the_replay():
    log = two_nodes()
    log.send("a", 2)
    log.send("a", 1)
    log.receive("b", 1)
    log.receive("b", 2)
    assert _Pass.of(log, 0) is None
    assert judge(log, {}, 0) == []
