"""The piggybacking in-group node (Beaver, Lai-Yang): snapshot rules and counting."""

from __future__ import annotations

from typing import Any

import pytest

from beaver.ids import UNMARKED, IdSpace
from beaver.node import PiggybackNode
from beaver.records import InFlight, LocalSnapshot, Receipt

SPACE = IdSpace(bits=6, window=16)


class Application:
    """A replica whose state is the list of messages applied to it, in order."""

    def __init__(self) -> None:
        self.applied: list[Any] = []
        self.captures: list[tuple[Any, ...]] = []

    def capture(self) -> tuple[Any, ...]:
        state = tuple(self.applied)
        self.captures.append(state)
        return state

    def receive(
        self, node: PiggybackNode, wire: int, sender: str | None, now: float, message: Any
    ) -> Receipt:
        receipt = node.receive(wire, sender, now, message)
        if receipt.deliver:
            self.applied.append(message)
        return receipt


def make_node(name: str = "b") -> tuple[PiggybackNode, Application]:
    app = Application()
    return PiggybackNode(name, app.capture, SPACE), app


def wire(full_id: int) -> int:
    return SPACE.to_wire(full_id)


def test_a_node_stamps_its_current_id() -> None:
    node, _ = make_node()
    assert node.send("a", 0.0) == wire(0)
    node.notify(3, 1.0)
    assert node.send("a", 2.0) == node.send(None, 2.0) == wire(3)


def test_the_snapshot_is_taken_before_the_newer_message_is_delivered() -> None:
    node, app = make_node()
    app.receive(node, wire(0), "a", 1.0, "m1")
    app.receive(node, wire(0), "c", 2.0, "m2")
    receipt = app.receive(node, wire(1), "a", 3.0, "m3")
    assert receipt.deliver
    assert receipt.snapshots == (
        LocalSnapshot("b", 1, 1, 3.0, ("m1", "m2"), sent={}, received={"a": 1, "c": 1}),
    )
    assert app.applied == ["m1", "m2", "m3"]
    assert node.current == 1


def test_the_same_id_again_takes_no_second_snapshot() -> None:
    node, app = make_node()
    app.receive(node, wire(2), "a", 1.0, "m1")
    receipt = app.receive(node, wire(2), "c", 2.0, "m2")
    assert receipt.snapshots == () and receipt.in_flight == ()
    assert app.captures == [()]


def test_skipping_ids_yields_one_local_snapshot_covering_the_range() -> None:
    node, app = make_node()
    app.receive(node, wire(0), "a", 1.0, "m1")
    receipt = app.receive(node, wire(4), None, 2.0, "from outside")
    (local,) = receipt.snapshots
    assert (local.first_id, local.last_id) == (1, 4)
    assert [local.covers(k) for k in range(6)] == [False, True, True, True, True, False]
    assert local.state == ("m1",)
    assert app.captures == [("m1",)]
    receipt = app.receive(node, wire(6), "a", 3.0, "m2")
    assert [(s.first_id, s.last_id) for s in receipt.snapshots] == [(5, 6)]


def test_an_older_message_after_the_snapshot_is_in_flight_for_the_ids_it_crossed() -> None:
    node, app = make_node()
    node.notify(5, 1.0)
    receipt = app.receive(node, wire(2), "a", 2.0, "late")
    assert receipt.deliver
    assert receipt.snapshots == ()
    assert receipt.in_flight == (InFlight("b", "a", 3, 5, "late", 2.0),)
    assert app.applied == ["late"]


def test_an_older_message_from_the_out_group_is_delivered_but_not_channel_state() -> None:
    node, app = make_node()
    node.notify(5, 1.0)
    receipt = app.receive(node, wire(2), None, 2.0, "old stamp")
    assert receipt.deliver and receipt.in_flight == () and receipt.snapshots == ()
    assert app.applied == ["old stamp"]


def test_per_peer_counts_reset_at_each_snapshot() -> None:
    node, app = make_node()
    node.send("a", 0.1)
    node.send("a", 0.2)
    node.send("c", 0.3)
    node.send(None, 0.4)
    app.receive(node, wire(0), "a", 0.5, "m1")
    app.receive(node, wire(0), None, 0.6, "outside")
    (first,) = node.notify(1, 1.0).snapshots
    assert first.sent == {"a": 2, "c": 1}
    assert first.received == {"a": 1}
    # The message that triggers snapshot 2 belongs to the epoch after it.
    node.send("c", 1.1)
    (second,) = app.receive(node, wire(2), "c", 2.0, "m2").snapshots
    assert second.sent == {"c": 1}
    assert second.received == {}
    (third,) = node.notify(3, 3.0).snapshots
    assert third.sent == {}
    assert third.received == {"c": 1}
    assert first.sent == {"a": 2, "c": 1}, "a reported snapshot must not change afterwards"


@pytest.mark.parametrize("offset", [17, 40, -17])
def test_out_of_window_ids_are_rejected_counted_and_leave_the_node_untouched(offset: int) -> None:
    node, app = make_node()
    node.notify(30, 1.0)
    node.send("a", 1.5)
    app.receive(node, wire(30), "a", 1.6, "m1")
    receipt = app.receive(node, wire(30 + offset), "a", 2.0, "bad")
    assert receipt.rejected and not receipt.deliver
    assert receipt.snapshots == () and receipt.in_flight == ()
    assert node.rejected == 1
    assert node.current == 30
    assert app.applied == ["m1"]
    (local,) = node.notify(31, 3.0).snapshots
    assert (local.sent, local.received) == ({"a": 1}, {"a": 1})


def test_unmarked_messages_from_in_group_peers_are_rejected() -> None:
    node, app = make_node()
    receipt = app.receive(node, UNMARKED, "a", 1.0, "unmarked")
    assert receipt.rejected and not receipt.deliver
    assert node.rejected == 1
    assert app.applied == []
    (local,) = node.notify(1, 2.0).snapshots
    assert local.received == {}


def test_unmarked_messages_from_the_out_group_are_delivered_without_a_snapshot() -> None:
    node, app = make_node()
    node.notify(2, 1.0)
    receipt = app.receive(node, UNMARKED, None, 2.0, "client request")
    assert receipt.deliver and not receipt.rejected
    assert receipt.snapshots == () and receipt.in_flight == ()
    assert node.current == 2 and node.rejected == 0
    assert app.applied == ["client request"]


def test_notify_snapshots_an_idle_node_once() -> None:
    node, app = make_node()
    (local,) = node.notify(3, 1.0).snapshots
    assert (local.first_id, local.last_id, local.taken_at) == (1, 3, 1.0)
    assert node.notify(3, 2.0).snapshots == ()
    assert node.notify(2, 2.0).snapshots == ()
    assert node.current == 3
    assert app.captures == [()]


def test_ids_keep_working_across_wraparound_of_the_code_space() -> None:
    node, app = make_node()
    for k in range(1, 4 * SPACE.codes):
        receipt = app.receive(node, wire(k), "a", float(k), k)
        assert [(s.first_id, s.last_id) for s in receipt.snapshots] == [(k, k)]
        late = app.receive(node, wire(k - 1), "c", float(k), -k)
        assert late.in_flight == (InFlight("b", "c", k, k, -k, float(k)),)
    assert node.rejected == 0
