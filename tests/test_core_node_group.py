"""The in-group as one node group: the same rule as one PiggybackNode per node, and the
coordinator's batch intake the same as its reports one by one."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from beaver.coordinator import Coordinator
from beaver.ids import IdSpace, InvalidId
from beaver.node import PiggybackNode
from beaver.node_group import NodeGroup
from beaver.records import LocalSnapshot, MemberSnapshot, MemberSnapshots
from beaver.refusals import InvalidInput, InvalidReport

SPACE = IdSpace(bits=4, window=3)
NAMES = ("a", "b", "c", "d")


class Captures:
    """Each node's application state: a counter of what happened to it."""

    def __init__(self) -> None:
        self.events = dict.fromkeys(NAMES, 0)

    def of(self, name: str) -> tuple[str, int]:
        self.events[name] += 1
        return name, self.events[name]


member = st.integers(0, len(NAMES) - 1)
wires = st.integers(0, SPACE.codes)
operations = st.one_of(
    st.tuples(st.just("send"), member, st.one_of(st.none(), member)),
    st.tuples(st.just("receive"), member, wires, st.one_of(st.none(), member)),
    st.tuples(st.just("notify"), member, st.integers(0, 12)),
    st.tuples(st.just("notify_many"),
              st.lists(st.tuples(member, st.integers(0, 12)), max_size=4,
                       unique_by=lambda pair: pair[0])),
)


def totals(local: LocalSnapshot) -> tuple:
    """A node's local snapshot as a group member reports it."""
    return (local.node, local.first_id, local.last_id, local.taken_at, local.state,
            sum(local.sent.values()), sum(local.received.values()))


@settings(max_examples=300, deadline=None)
@given(st.lists(operations, max_size=60))
def test_a_group_decides_as_one_piggyback_node_per_member(sequence) -> None:
    alone_states, group_states = Captures(), Captures()
    nodes = [PiggybackNode(name, lambda name=name: alone_states.of(name), SPACE)
             for name in NAMES]
    group = NodeGroup(NAMES, lambda i, first, last: group_states.of(NAMES[i]), SPACE)
    for now, (kind, *args) in enumerate(sequence, start=1):
        at = float(now)
        if kind == "send":
            i, peer = args
            name = None if peer is None else NAMES[peer]
            assert group.send(i, name, at) == nodes[i].send(name, at)
        elif kind == "receive":
            i, wire, sender = args
            name = None if sender is None else NAMES[sender]
            alone = nodes[i].receive(wire, name, at, ("m", now))
            together = group.receive(i, wire, name, at, ("m", now))
            assert (together.deliver, together.rejected, together.in_flight) == (
                alone.deliver, alone.rejected, alone.in_flight)
            assert [tuple(local[:7]) for local in together.snapshots] == [
                totals(local) for local in alone.snapshots]
        elif kind == "notify":
            i, k = args
            (alone,) = nodes[i].notify(k, at).snapshots or (None,)
            together = group.notify(i, k, at)
            assert (None if together is None else tuple(together[:7])) == (
                None if alone is None else totals(alone))
        else:
            (pairs,) = args
            pairs.sort()
            expected = [totals(local) for i, k in pairs
                        for local in nodes[i].notify(k, at + i).snapshots]
            members = np.array([i for i, _ in pairs], dtype=np.int64)
            taken = group.notify_many(members, np.array([k for _, k in pairs], dtype=np.int64),
                                      at + members.astype(np.float64))
            found = [] if taken is None else [
                tuple(taken.member(j)[:7]) for j in range(len(taken.states))]
            assert found == expected
        assert list(group.current) == [node.current for node in nodes]
        assert list(group.rejected) == [node.rejected for node in nodes]
    assert group_states.events == alone_states.events, "the same captures, as often"


def test_notify_many_refuses_members_out_of_order_or_repeated() -> None:
    group = NodeGroup(NAMES, lambda i, first, last: None, SPACE)
    for members in ([1, 1], [2, 1], [0, 4]):
        with pytest.raises(ValueError, match="increasing order"):
            group.notify_many(np.array(members, dtype=np.int64),
                              np.array([1, 1], dtype=np.int64), np.zeros(2))
    with pytest.raises(InvalidId):
        group.notify_many(np.array([0]), np.array([1.5]), np.zeros(1))
    assert list(group.current) == [0, 0, 0, 0]


# -- the coordinator's batch intake -----------------------------------------------------


def state_of(coordinator: Coordinator) -> dict[str, Any]:
    fields = dict(vars(coordinator))
    for name in ("rejected_reports", "_group", "_group_indices"):
        fields.pop(name)
    fields["_last_reported"] = list(fields["_last_reported"])
    return copy.deepcopy(fields)


@st.composite
def batches(draw: st.DrawFn) -> list[tuple]:
    """Reports of distinct members: (member, first, last, sent, received), mostly valid."""
    members = sorted(draw(st.sets(member, max_size=4)))
    return [(i, draw(st.integers(-1, 9)), draw(st.integers(-1, 9)), draw(st.integers(-1, 3)),
             draw(st.integers(-1, 3))) for i in members]


def as_batch(reports: list[tuple], at: float) -> MemberSnapshots:
    def column(j: int) -> np.ndarray:
        return np.array([report[j] for report in reports], dtype=np.int64)

    return MemberSnapshots(NAMES, column(0), column(1), column(2),
                           np.full(len(reports), at), [f"s{r[0]}" for r in reports],
                           column(3), column(4))


@st.composite
def plausible(draw: st.DrawFn, last: list[int], newest: int) -> list[tuple]:
    """Reports that are mostly the next ones of their nodes."""
    reports = []
    for i in sorted(draw(st.sets(member, max_size=4))):
        first = draw(st.sampled_from([last[i] + 1] * 3 + [last[i], last[i] + 2]))
        end = draw(st.integers(first, max(first, newest)))
        reports.append((i, first, end, draw(st.integers(0, 3)), draw(st.integers(0, 3))))
    return reports


def make() -> Coordinator:
    coordinator = Coordinator(NAMES, space=IdSpace(bits=5, window=12))
    for step in range(8):
        coordinator.start(float(step))
    return coordinator


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_add_locals_is_add_local_of_each_in_turn(data) -> None:
    together, one_by_one = make(), make()
    for step in range(6):
        at = 10.0 + step
        last = list(together._last_reported)
        if data.draw(st.booleans()):
            reports = data.draw(plausible(last, together.newest))
        else:
            reports = data.draw(batches())
        before = state_of(together)
        refusals = together.rejected_reports
        try:
            done = together.add_locals(as_batch(reports, at), at)
        except InvalidReport:
            done = None
            assert state_of(together) == before, "a refused batch changes nothing"
            assert together.rejected_reports == refusals + 1
        expected, refused = [], False
        for i, first, end, sent, received in reports:
            local = LocalSnapshot(NAMES[i], first, end, at, f"s{i}",
                                  sent={NAMES[(i + 1) % 4]: sent} if sent else {},
                                  received={NAMES[(i + 2) % 4]: received} if received else {})
            try:
                expected += one_by_one.add_local(local, at)
            except InvalidReport:
                refused = True
        assert refused == (done is None)
        if done is not None:
            assert done == expected
            assert state_of(together) == state_of(one_by_one)
        else:  # the reference takes the good ones: start both again from its state
            together = copy.deepcopy(one_by_one)


def test_a_member_s_report_alone_is_taken_as_add_local_takes_it() -> None:
    alone, reference = make(), make()
    group = ("a", "b", "c", "d")
    assert alone.add_member_local(MemberSnapshot("a", 1, 2, 1.0, "s", 2, 0, group), 9.0) == []
    assert reference.add_local(LocalSnapshot("a", 1, 2, 1.0, "s", sent={"b": 2}), 9.0) == []
    assert state_of(alone) == state_of(reference)
    with pytest.raises(InvalidReport, match="expected one starting at 3"):
        alone.add_member_local(MemberSnapshot("a", 1, 2, 1.0, "s", 0, 0, group), 9.0)
    with pytest.raises(InvalidReport, match="not in-group"):
        alone.add_member_local(MemberSnapshot("b", 1, 1, 1.0, "s", 0, 0, ("b", "z")), 9.0)
    with pytest.raises(InvalidReport, match="not ints >= 0"):
        alone.add_member_local(MemberSnapshot("b", 1, 1, 1.0, "s", -1, 0, group), 9.0)
    with pytest.raises(InvalidInput):
        alone.add_member_local(MemberSnapshot("b", 1.0, 1, 1.0, "s", 0, 0, group), 9.0)
    assert state_of(alone) == state_of(reference), "refusals change nothing"
    assert alone.rejected_reports == 4
