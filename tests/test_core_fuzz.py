"""Fuzzing the protocol core's boundary: any input is taken or refused with the core's own
error, and a refused input changes nothing."""

from __future__ import annotations

import copy

from hypothesis import given, settings
from hypothesis import strategies as st

from beaver.coordinator import Coordinator
from beaver.gateway import Gateway
from beaver.ids import IdSpace, InvalidId
from beaver.node import PiggybackNode
from beaver.records import InFlight, LocalSnapshot
from beaver.refusals import InvalidInput

NODES = ("a", "b", "c")
JUNK = st.one_of(
    st.integers(-3, 70), st.floats(allow_nan=True, allow_infinity=True), st.booleans(),
    st.none(), st.text(max_size=3), st.lists(st.integers(), max_size=2),
)
IDS = st.one_of(st.integers(0, 12), JUNK)
TIMES = st.one_of(st.floats(0, 10), JUNK)
NAMES = st.one_of(st.sampled_from([*NODES, "g1", "z"]), JUNK)
COUNTS = st.one_of(
    st.dictionaries(st.sampled_from(NODES), st.integers(0, 3), max_size=3),
    st.dictionaries(st.one_of(st.sampled_from([*NODES, "z"]), st.integers()), JUNK, max_size=2),
    JUNK,
)
REFUSALS = (InvalidId, InvalidInput)


def state_of(thing: object) -> dict:
    fields = dict(vars(thing))
    fields.pop("rejected_reports", None)
    fields.pop("rejected", None)
    return copy.deepcopy(fields)


@st.composite
def local_reports(draw: st.DrawFn) -> LocalSnapshot:
    first = draw(IDS)
    last = draw(st.one_of(st.just(first), IDS))
    return LocalSnapshot(draw(NAMES), first, last, draw(TIMES), "state", draw(COUNTS),
                         draw(COUNTS))


@st.composite
def calls(draw: st.DrawFn) -> tuple:
    kind = draw(st.sampled_from(["start", "ack", "fail", "local", "in_flight", "expire",
                                 "lower", "can_start"]))
    if kind == "local":
        return kind, draw(local_reports()), draw(TIMES)
    if kind == "in_flight":
        first = draw(IDS)
        record = InFlight(draw(NAMES), draw(NAMES), first, draw(st.one_of(st.just(first), IDS)),
                          "m", draw(TIMES))
        return kind, record, draw(TIMES)
    if kind in ("ack", "fail"):
        return kind, draw(NAMES), draw(IDS), draw(TIMES)
    if kind == "lower":
        return kind, draw(TIMES)
    return kind, draw(TIMES)


def apply(coordinator: Coordinator, call: tuple) -> None:
    kind, *args = call
    method = {"start": coordinator.start, "ack": coordinator.gateway_acked,
              "fail": coordinator.gateway_failed, "local": coordinator.add_local,
              "in_flight": coordinator.add_in_flight, "expire": coordinator.expire,
              "lower": coordinator.lower_tau_min, "can_start": coordinator.can_start}[kind]
    method(*args)


@settings(max_examples=150, deadline=None)
@given(st.lists(calls(), max_size=40))
def test_the_coordinator_takes_or_refuses_anything_and_a_refusal_changes_nothing(sequence):
    coordinator = Coordinator(NODES, gateways=["g1"], tau_min=1.0, update_timeout=2.0,
                              space=IdSpace(bits=4, window=3), packet_lifetime=0.5)
    for call in sequence:
        before = state_of(coordinator)
        try:
            apply(coordinator, call)
        except REFUSALS:
            assert state_of(coordinator) == before, call
        except RuntimeError as error:  # start with a full window: says what to wait for
            assert "wait for" in str(error)
            assert state_of(coordinator) == before, call


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_nodes_gateways_and_id_spaces_refuse_junk_without_changing(data):
    space = IdSpace(bits=4, window=3)
    node = PiggybackNode("a", lambda: "state", space)
    gateway = Gateway("g1", space)
    for _ in range(data.draw(st.integers(1, 30))):
        target, call = data.draw(st.sampled_from([
            (node, lambda n, v, w: n.receive(v, w if isinstance(w, str) else None, 0.0)),
            (node, lambda n, v, w: n.notify(v, 0.0)),
            (node, lambda n, v, w: n.send(w if isinstance(w, str) else None, 0.0)),
            (gateway, lambda g, v, w: g.set_id(v)),
            (gateway, lambda g, v, w: g.observe_ingroup(v)),
            (space, lambda s, v, w: s.from_wire(v, w)),
            (space, lambda s, v, w: s.to_wire(v)),
            (space, lambda s, v, w: IdSpace(v, w)),
        ]))
        value, other = data.draw(IDS), data.draw(st.one_of(IDS, NAMES))
        before = state_of(target)
        try:
            call(target, value, other)
        except InvalidId:
            assert state_of(target) == before
    assert type(node.current) is int and type(gateway.current) is int


def test_the_issues_examples_are_refused():
    space = IdSpace()
    for bad in (1.5, True, -1, "3"):
        for call in (space.to_wire, lambda v: space.from_wire(v, 0),
                     lambda v: space.from_wire(1, v)):
            try:
                call(bad)
            except InvalidId:
                continue
            raise AssertionError(f"{bad!r} was taken")
    for bits, window in ((6, 1.5), (6.0, 3), (True, 1), (6, 32)):
        try:
            IdSpace(bits, window)
        except InvalidId:
            continue
        raise AssertionError(f"IdSpace({bits!r}, {window!r}) was made")
    node = PiggybackNode("a", lambda: None, space)
    try:
        node.notify(1.5, 0.0)
    except InvalidId:
        assert node.current == 0
    else:
        raise AssertionError("a float id was adopted")


def test_a_bad_report_leaves_room_for_the_good_retry():
    coordinator = Coordinator(["a", "b"])
    coordinator.start(0.0)
    bad = LocalSnapshot("a", 1, 1, 0.0, "s", sent={"b": 1.5})
    try:
        coordinator.add_local(bad, 0.0)
    except InvalidInput:
        pass
    assert coordinator.add_local(LocalSnapshot("a", 1, 1, 0.0, "s"), 0.0) == []
    assert coordinator.add_local(LocalSnapshot("b", 1, 1, 0.0, "s"), 0.0) == [1]


def test_counts_from_unknown_peers_cannot_hide_an_in_flight_message():
    coordinator = Coordinator(["a", "b"])
    coordinator.start(0.0)
    coordinator.add_local(LocalSnapshot("a", 1, 1, 0.0, "s", sent={"b": 1}), 0.0)
    forged = LocalSnapshot("b", 1, 1, 0.0, "s", received={"z": 1})
    try:
        coordinator.add_local(forged, 0.0)
    except InvalidInput:
        pass
    else:
        raise AssertionError("a count from an unknown peer was taken")
    coordinator.add_local(LocalSnapshot("b", 1, 1, 0.0, "s"), 0.0)
    assert not coordinator.status(1).complete, "a's message to b is still in flight"
    assert coordinator.add_in_flight(InFlight("b", "a", 1, 1, "m", 1.0), 1.0) == [1]
