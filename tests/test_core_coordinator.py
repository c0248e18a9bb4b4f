"""The snapshot coordinator: gateway phase, validity, window, completeness, reports."""

from __future__ import annotations

import copy
import math
import random
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from beaver.coordinator import Coordinator
from beaver.gateway import Gateway
from beaver.ids import UNMARKED, IdSpace
from beaver.node import PiggybackNode
from beaver.protocols import protocol
from beaver.records import (
    InFlight,
    LocalSnapshot,
    NotifyNode,
    NotifyNodes,
    Receipt,
    UpdateGateway,
)
from beaver.refusals import InvalidReport
from beaver.snapshot_status import Notify

NODES = ("a", "b", "c")


def local(node: str, first: int, last: int | None = None, state: object = None, *,
          sent: dict[str, int] | None = None, received: dict[str, int] | None = None,
          at: float = 0.0) -> LocalSnapshot:
    return LocalSnapshot(node, first, first if last is None else last, at,
                         state if state is not None else f"{node}@{first}",
                         sent=sent or {}, received=received or {})


def notified(commands: list) -> list[tuple[str, int]]:
    return [(c.node, c.snapshot_id) for c in commands if isinstance(c, NotifyNode)]


# -- the gateway phase and validity --------------------------------------------------------


def test_start_asks_every_gateway_and_tells_nodes_only_after_the_last_ack() -> None:
    coordinator = Coordinator(NODES, gateways=["g2", "g1"], tau_min=0.5)
    k, commands = coordinator.start(0.0)
    assert k == 1
    assert commands == [UpdateGateway("g1", 1), UpdateGateway("g2", 1)]
    status = coordinator.status(1)
    assert status.valid is None and status.t1 is None
    assert coordinator.gateway_acked("g1", 1, 0.125) == []
    assert coordinator.status(1).valid is None
    commands = coordinator.gateway_acked("g2", 1, 0.25)
    assert notified(commands) == [("a", 1), ("b", 1), ("c", 1)]
    assert status.t1 == 0.25 and status.update_time == 0.25
    assert status.valid is True
    assert status.gateway_acks == {"g1": 0.125, "g2": 0.25}


def test_a_broadcasting_coordinator_tells_every_node_in_one_command() -> None:
    coordinator = Coordinator(NODES, gateways=["g1"], tau_min=0.5, broadcast=True)
    coordinator.start(0.0)
    assert coordinator.gateway_acked("g1", 1, 0.125) == [NotifyNodes(NODES, 1)]
    without_gateways = Coordinator(NODES, broadcast=True)
    assert without_gateways.start(0.0) == (1, [NotifyNodes(NODES, 1)])
    marker = protocol("chandy-lamport").coordinator(NODES, broadcast=True)
    assert marker.start(0.0) == (1, [NotifyNode("a", 1)]), "an initiator is told alone"


@pytest.mark.parametrize(("last_ack", "valid"), [(0.375, True), (0.5, False), (0.625, False)])
def test_valid_only_if_t1_minus_t0_is_strictly_below_tau_min(last_ack: float, valid: bool) -> None:
    coordinator = Coordinator(NODES, gateways=["g1", "g2"], tau_min=0.5)
    coordinator.start(1.0)
    coordinator.gateway_acked("g1", 1, 1.125)
    coordinator.gateway_acked("g2", 1, 1.0 + last_ack)
    status = coordinator.status(1)
    assert status.t1 == 1.0 + last_ack
    assert status.valid is valid


def test_t1_is_the_latest_acknowledgement_even_if_acks_are_handled_out_of_order() -> None:
    coordinator = Coordinator(NODES, gateways=["g1", "g2"], tau_min=0.5)
    coordinator.start(0.0)
    coordinator.gateway_acked("g1", 1, 0.75)
    coordinator.gateway_acked("g2", 1, 0.25)
    status = coordinator.status(1)
    assert status.t1 == 0.75
    assert status.valid is False


def test_repeated_or_unknown_acks_change_nothing() -> None:
    coordinator = Coordinator(NODES, gateways=["g1", "g2"], tau_min=1.0)
    coordinator.start(0.0)
    assert coordinator.gateway_acked("g1", 1, 0.25) == []
    assert coordinator.gateway_acked("g1", 1, 0.5) == []
    assert coordinator.gateway_acked("g9", 1, 0.5) == []
    assert coordinator.gateway_acked("g2", 7, 0.5) == []
    assert coordinator.status(1).pending_gateways == {"g2"}
    assert coordinator.status(1).gateway_acks == {"g1": 0.25}


@pytest.mark.parametrize("failing_first", [True, False])
def test_a_failed_gateway_makes_the_snapshot_invalid_for_good(failing_first: bool) -> None:
    coordinator = Coordinator(NODES, gateways=["g1", "g2"], tau_min=math.inf)
    coordinator.start(0.0)
    if failing_first:
        assert coordinator.gateway_failed("g1", 1, 0.25) == []
        commands = coordinator.gateway_acked("g2", 1, 0.5)
    else:
        coordinator.gateway_acked("g2", 1, 0.25)
        commands = coordinator.gateway_failed("g1", 1, 0.5)
    assert notified(commands) == [("a", 1), ("b", 1), ("c", 1)]
    status = coordinator.status(1)
    assert status.valid is False and status.t1 is None
    assert status.failed_gateways == {"g1"}
    assert coordinator.gateway_acked("g1", 1, 0.75) == []
    assert status.valid is False


def test_expire_fails_pending_gateways_after_the_update_timeout() -> None:
    coordinator = Coordinator(NODES, gateways=["g1", "g2"], update_timeout=2.0)
    coordinator.start(1.0)
    coordinator.gateway_acked("g1", 1, 1.5)
    assert coordinator.expire(2.75) == []
    assert coordinator.status(1).valid is None
    commands = coordinator.expire(3.0)
    assert notified(commands) == [("a", 1), ("b", 1), ("c", 1)]
    status = coordinator.status(1)
    assert status.valid is False
    assert status.failed_gateways == {"g2"}
    assert status.gateway_acks == {"g1": 1.5}
    assert coordinator.expire(10.0) == []
    assert coordinator.gateway_acked("g2", 1, 10.0) == []
    assert status.valid is False


def test_without_gateways_a_snapshot_is_valid_at_once_and_nodes_are_told() -> None:
    coordinator = Coordinator(NODES, tau_min=0.0)
    k, commands = coordinator.start(4.0)
    assert notified(commands) == [("a", 1), ("b", 1), ("c", 1)]
    assert coordinator.status(k).valid is True
    assert coordinator.status(k).update_time == 0.0


def test_marker_protocols_tell_only_the_initiator() -> None:
    coordinator = Coordinator(NODES, notify=Notify.INITIATOR, counts_channels=False)
    _, commands = coordinator.start(0.0)
    assert commands == [NotifyNode("a", 1)]


def test_a_coordinator_needs_nodes() -> None:
    with pytest.raises(ValueError, match="at least one"):
        Coordinator([])


# -- the window of snapshots in flight -----------------------------------------------------


def finish_without_messages(coordinator: Coordinator, k: int) -> list[int]:
    done = []
    for node in coordinator.nodes:
        done += coordinator.add_local(local(node, k), 1.0)
    return done


def test_start_waits_when_the_window_is_full() -> None:
    coordinator = Coordinator(NODES, space=IdSpace(bits=3, window=3))
    for expected in (1, 2, 3):
        assert coordinator.can_start(0.0)
        assert coordinator.start(0.0)[0] == expected
    assert not coordinator.can_start(0.0)
    with pytest.raises(RuntimeError, match="wait for snapshot 1"):
        coordinator.start(0.0)
    assert coordinator.newest == 3
    assert coordinator.oldest_unfinished == 1


def test_only_finishing_the_oldest_snapshot_frees_the_window() -> None:
    coordinator = Coordinator(NODES, space=IdSpace(bits=3, window=2))
    coordinator.start(0.0)
    coordinator.start(0.0)
    assert not coordinator.can_start(0.0)
    for node in NODES:
        coordinator.add_local(local(node, 1, 2), 1.0)
    assert coordinator.status(2).finished and coordinator.status(1).finished
    assert coordinator.can_start(2.0)
    assert coordinator.start(2.0)[0] == 3


def test_a_complete_snapshot_waiting_for_its_gateways_keeps_the_window_full() -> None:
    coordinator = Coordinator(NODES, gateways=["g1"], space=IdSpace(bits=3, window=1))
    coordinator.start(0.0)
    assert finish_without_messages(coordinator, 1) == [1]
    assert coordinator.status(1).complete and not coordinator.status(1).finished
    assert not coordinator.can_start(0.0)
    coordinator.gateway_acked("g1", 1, 0.5)
    assert coordinator.status(1).finished
    assert coordinator.can_start(2.0)


def test_a_gateway_whose_updates_keep_failing_holds_the_window() -> None:
    """Invalid snapshots finish, but the failing gateway may still stamp its old id."""
    coordinator = Coordinator(NODES, gateways=["g1", "g2"], update_timeout=1.0,
                              space=IdSpace(bits=3, window=3))
    for k in (1, 2, 3):
        assert coordinator.can_start(float(k))
        coordinator.start(float(k))
        coordinator.gateway_acked("g1", k, float(k))
        coordinator.expire(k + 1.0)
        finish_without_messages(coordinator, k)
        assert coordinator.status(k).finished and coordinator.status(k).valid is False
    assert coordinator.oldest_unfinished == 4
    assert not coordinator.can_start(5.0)
    with pytest.raises(RuntimeError, match="wait for gateway g2"):
        coordinator.start(5.0)
    assert coordinator.gateway_acked("g2", 2, 5.0) == [], "a late ack changes no snapshot"
    assert coordinator.status(2).valid is False
    assert coordinator.can_start(6.0)
    assert coordinator.start(6.0)[0] == 4
    assert coordinator.start(7.0)[0] == 5
    assert not coordinator.can_start(7.0), "g2 may still stamp 2; 6 would be 4 ids ahead"


def test_no_id_starts_further_ahead_of_a_gateways_acknowledged_id_than_the_lead() -> None:
    """A gateway recognises in-group ids only ``lead`` ahead of its own (the emulation's
    observe rules see 127): while one lags, no start takes an id beyond that, however
    wide the window; its ack frees the start, and the holdup names it."""
    coordinator = Coordinator(NODES, gateways=["g1", "g2"], packet_lifetime=0.0,
                              space=IdSpace(bits=6, window=31, lead=4))
    for k in range(1, 5):
        coordinator.start(float(k))
        coordinator.gateway_acked("g1", k, float(k))
        finish_without_messages(coordinator, k)
    assert coordinator.newest == 4 and coordinator.oldest_unfinished == 1
    assert not coordinator.can_start(5.0) and coordinator.next_start_at() is None
    with pytest.raises(RuntimeError, match="wait for gateway g2 to acknowledge"):
        coordinator.start(5.0)
    coordinator.gateway_acked("g2", 2, 5.0)
    assert coordinator.can_start(5.0) and coordinator.start(5.0)[0] == 5
    assert coordinator.start(5.0)[0] == 6
    assert not coordinator.can_start(5.0), "7 would lead g2's acknowledged 2 by 5"


def test_stale_stamps_of_a_failing_gateway_never_alias_to_unstarted_ids() -> None:
    """g2 forwards client traffic but never gets its updates; snapshots go on while they may."""
    space = IdSpace()
    coordinator = Coordinator(["a"], gateways=["g1", "g2"], update_timeout=1.0, space=space)
    g1, g2 = Gateway("g1", space), Gateway("g2", space)
    node = PiggybackNode("a", lambda: "state", space)
    now = 0.0
    while coordinator.can_start(now) and coordinator.newest < 3 * space.codes:
        k, _ = coordinator.start(now)
        g1.set_id(k)
        coordinator.gateway_acked("g1", k, now)
        now += 1.0
        for command in coordinator.expire(now):
            for local_snapshot in node.notify(command.snapshot_id, now).snapshots:
                coordinator.add_local(local_snapshot, now)
    assert coordinator.newest == space.window
    receipt = node.receive(g2.stamp(), None, now, "client request through g2")
    assert receipt.snapshots == ()
    assert node.current == coordinator.newest


# -- completeness by counting --------------------------------------------------------------


def test_complete_once_every_counted_in_flight_message_is_recorded() -> None:
    coordinator = Coordinator(NODES)
    coordinator.start(0.0)
    # a sent two messages to b before its snapshot; b received one of them first.
    assert coordinator.add_local(local("a", 1, sent={"b": 2}), 1.0) == []
    assert coordinator.add_local(local("b", 1, received={"a": 1}), 1.0) == []
    assert coordinator.add_local(local("c", 1), 1.0) == []
    assert not coordinator.status(1).complete
    assert coordinator.add_in_flight(InFlight("b", "a", 1, 1, "m2", 2.0), 2.0) == [1]
    status = coordinator.status(1)
    assert status.complete and status.completed_at == 2.0 and status.finished


def test_in_flight_records_may_arrive_before_the_last_local_snapshot() -> None:
    coordinator = Coordinator(NODES)
    coordinator.start(0.0)
    coordinator.start(0.0)
    coordinator.add_local(local("a", 1, 2, sent={"c": 1}), 1.0)
    assert coordinator.add_in_flight(InFlight("c", "a", 1, 2, "m", 1.5), 1.5) == []
    coordinator.add_local(local("b", 1, 2), 2.0)
    assert coordinator.add_local(local("c", 1, 2), 3.0) == [1, 2]
    assert coordinator.status(1).completed_at == 3.0


def test_a_node_that_lags_holds_up_only_the_snapshots_it_has_not_reported() -> None:
    coordinator = Coordinator(NODES)
    for _ in range(3):
        coordinator.start(0.0)
    coordinator.add_local(local("a", 1, 3), 1.0)
    coordinator.add_local(local("b", 1, 3), 1.0)
    assert coordinator.add_local(local("c", 1), 2.0) == [1]
    assert not coordinator.status(2).complete
    assert coordinator.add_local(local("c", 2, 3), 3.0) == [2, 3]


# -- reports the coordinator refuses --------------------------------------------------------


def busy_coordinator() -> Coordinator:
    """Snapshot 1 finished, 2 waiting for one in-flight message, 3 reported by ``a`` only.

    ``a`` sent one message to ``b`` between its snapshots 1 and 2; ``b`` has
    not received it yet.
    """
    coordinator = Coordinator(NODES, gateways=["g1"], tau_min=1.0)
    for _ in range(3):
        coordinator.start(0.0)
    coordinator.gateway_acked("g1", 1, 0.25)
    for node in NODES:
        coordinator.add_local(local(node, 1), 1.0)
    coordinator.add_local(local("a", 2, 3, sent={"b": 1}), 1.5)
    coordinator.add_local(local("b", 2), 1.5)
    coordinator.add_local(local("c", 2), 1.5)
    assert coordinator.status(1).complete and not coordinator.status(2).complete
    return coordinator


def observable(coordinator: Coordinator) -> tuple:
    return (
        copy.deepcopy([coordinator.assemble(k) for k in (1, 2, 3)]),
        copy.deepcopy(coordinator.statuses()),
        coordinator.newest,
        coordinator.oldest_unfinished,
        coordinator.can_start(5.0),
    )


INVALID_REPORTS = {
    "unknown node": local("z", 1),
    "duplicate": local("b", 2),
    "duplicate of an older one": local("b", 1),
    "out of order": local("c", 4),
    "beyond the newest id": local("c", 3, 9),
    "negative sent count": local("c", 3, sent={"a": -1}),
    "negative received count": local("c", 3, received={"b": -2}),
    "in-flight to an unknown node": InFlight("z", "a", 2, 2, "m", 2.0),
    "in-flight from an unknown node": InFlight("b", "z", 2, 2, "m", 2.0),
    "in-flight beyond the newest id": InFlight("b", "a", 2, 4, "m", 2.0),
    "in-flight for id zero": InFlight("b", "a", 0, 2, "m", 2.0),
    "in-flight with an empty range": InFlight("b", "a", 2, 1, "m", 2.0),
    "in-flight for a complete snapshot": InFlight("b", "a", 1, 2, "m", 2.0),
}


@pytest.mark.parametrize("report", INVALID_REPORTS.values(), ids=INVALID_REPORTS.keys())
def test_invalid_reports_are_refused_counted_and_leave_the_state_intact(report) -> None:
    coordinator = busy_coordinator()
    before = observable(coordinator)
    with pytest.raises(InvalidReport):
        if isinstance(report, LocalSnapshot):
            coordinator.add_local(report, 5.0)
        else:
            coordinator.add_in_flight(report, 5.0)
    assert coordinator.rejected_reports == 1
    assert observable(coordinator) == before
    # The run goes on as if the bad report never came.
    assert coordinator.add_in_flight(InFlight("b", "a", 2, 2, "m", 6.0), 6.0) == [2]
    assert coordinator.add_local(local("c", 3), 7.0) == []
    assert coordinator.rejected_reports == 1


# -- assembly and forgetting ---------------------------------------------------------------


def test_assemble_uses_the_local_snapshot_covering_each_id_and_its_messages() -> None:
    coordinator = busy_coordinator()
    two = coordinator.assemble(2)
    assert two.snapshot_id == 2
    assert two.states == {"a": "a@2", "b": "b@2", "c": "c@2"}
    assert two.in_flight == ()
    coordinator.add_in_flight(InFlight("b", "a", 2, 2, "m", 6.0), 6.0)
    assert coordinator.assemble(2).in_flight == (InFlight("b", "a", 2, 2, "m", 6.0),)
    assert coordinator.assemble(2).status.complete
    partial = coordinator.assemble(3)
    assert partial.states == {"a": "a@2"}
    assert not partial.status.complete
    with pytest.raises(KeyError, match="no snapshot 4"):
        coordinator.assemble(4)


def test_forget_drops_finished_snapshots_only() -> None:
    coordinator = busy_coordinator()
    coordinator.gateway_acked("g1", 2, 0.5)
    coordinator.gateway_acked("g1", 3, 0.5)
    coordinator.forget(2)
    assert coordinator.assemble(1).states == {}
    unfinished = coordinator.assemble(2)
    assert unfinished.states == {"a": "a@2", "b": "b@2", "c": "c@2"}
    assert coordinator.add_in_flight(InFlight("b", "a", 2, 2, "m", 6.0), 6.0) == [2]
    assert coordinator.assemble(2).in_flight == (InFlight("b", "a", 2, 2, "m", 6.0),)
    coordinator.add_local(local("b", 3, received={"a": 1}), 7.0)
    assert coordinator.add_local(local("c", 3), 7.0) == [3]
    assert coordinator.status(3).finished
    coordinator.forget(2)
    forgotten = coordinator.assemble(2)
    assert forgotten.states == {"a": "a@2"}, "a's state still stands for snapshot 3"
    assert forgotten.in_flight == ()
    assert coordinator.assemble(3).states == {"a": "a@2", "b": "b@3", "c": "c@3"}
    with pytest.raises(InvalidReport):
        coordinator.add_in_flight(InFlight("b", "a", 2, 2, "again", 8.0), 8.0)


# -- completeness under random interleavings -----------------------------------------------


@dataclass
class Message:
    """An in-group message as the test sees it: who, when sent and when received."""

    ident: int
    sender: str
    receiver: str
    wire: int
    sent_at: int
    received_at: int | None = None


class Replica:
    """An application whose state is what it sent and what was applied to it."""

    def __init__(self) -> None:
        self.sent: list[int] = []
        self.applied: list[int | str] = []
        self.captures: list[tuple[tuple[int, ...], tuple[int | str, ...]]] = []

    def state(self) -> tuple[tuple[int, ...], tuple[int | str, ...]]:
        return tuple(self.sent), tuple(self.applied)

    def capture(self) -> tuple[tuple[int, ...], tuple[int | str, ...]]:
        self.captures.append(self.state())
        return self.captures[-1]


class Run:
    """A few piggybacking nodes, one gateway (Beaver) and the coordinator, driven step by step.

    The test's own clock counts steps. The test remembers when each message
    was sent and received and, from each node's ``current``, the step at
    which the node passed each snapshot's cut; that is all the truth needs.
    """

    def __init__(self, name: str, nodes: int, space: IdSpace, rng: random.Random) -> None:
        chosen = protocol(name)
        self.rng = rng
        self.clock = 0
        self.names = [f"n{i}" for i in range(nodes)]
        self.replicas = {n: Replica() for n in self.names}
        self.nodes = {
            n: chosen.node(n, self.replicas[n].capture, peers=self.names, space=space)
            for n in self.names
        }
        self.gateway = Gateway("g", space) if chosen.uses_gateways else None
        self.coordinator = chosen.coordinator(self.names, gateways=["g"], space=space)
        self.messages: list[Message] = []
        self.in_transit: list[Message] = []
        self.updates: list[UpdateGateway] = []
        self.notifications: list[NotifyNode] = []
        self.cut_at: dict[str, dict[int, int]] = {n: {} for n in self.names}
        self.state_at_cut: dict[str, dict[int, tuple]] = {n: {} for n in self.names}
        self.recorded_at_completion: dict[int, list[int]] = {}
        self.outside = 0

    def tick(self) -> float:
        self.clock += 1
        return float(self.clock)

    # -- what happens at a node

    def at_node(self, name: str, act) -> Receipt:
        node, replica = self.nodes[name], self.replicas[name]
        before, captures, state = node.current, len(replica.captures), replica.state()
        receipt = act(node, self.tick())
        if node.current > before:
            assert len(replica.captures) == captures + 1
            assert replica.captures[-1] == state, "captured after the message was applied"
            for k in range(before + 1, node.current + 1):
                self.cut_at[name][k] = self.clock
                self.state_at_cut[name][k] = state
        else:
            assert len(replica.captures) == captures
        for local_snapshot in receipt.snapshots:
            self.completed(self.coordinator.add_local(local_snapshot, float(self.clock)))
        for record in receipt.in_flight:
            self.completed(self.coordinator.add_in_flight(record, float(self.clock)))
        return receipt

    def completed(self, done: list[int]) -> None:
        for k in done:
            assert k not in self.recorded_at_completion
            in_flight = self.coordinator.assemble(k).in_flight
            self.recorded_at_completion[k] = sorted(r.message for r in in_flight)

    def command(self, commands: list) -> None:
        for command in commands:
            if isinstance(command, UpdateGateway):
                self.updates.append(command)
            else:
                self.notifications.append(command)

    # -- the steps

    def send(self) -> None:
        sender, receiver = self.rng.sample(self.names, 2)
        wire = self.nodes[sender].send(receiver, self.tick())
        message = Message(len(self.messages), sender, receiver, wire, self.clock)
        self.replicas[sender].sent.append(message.ident)
        self.messages.append(message)
        self.in_transit.append(message)

    def deliver(self) -> None:
        message = self.in_transit.pop(self.rng.randrange(len(self.in_transit)))
        receipt = self.at_node(
            message.receiver,
            lambda node, now: node.receive(message.wire, message.sender, now, message.ident),
        )
        assert receipt.deliver and not receipt.rejected
        self.replicas[message.receiver].applied.append(message.ident)
        message.received_at = self.clock

    def from_outside(self) -> None:
        """An out-group request enters through the gateway (stamped on the way in)."""
        self.outside += 1
        wire = self.gateway.stamp() if self.gateway else UNMARKED
        receiver = self.rng.choice(self.names)
        receipt = self.at_node(
            receiver, lambda node, now: node.receive(wire, None, now, f"out{self.outside}")
        )
        assert receipt.deliver and receipt.in_flight == ()
        self.replicas[receiver].applied.append(f"out{self.outside}")

    def to_outside(self) -> None:
        """An in-group node answers the out-group; the reply crosses the gateway."""
        wire = self.nodes[self.rng.choice(self.names)].send(None, self.tick())
        if self.gateway:
            self.gateway.observe_ingroup(wire)

    def start(self) -> None:
        if self.coordinator.can_start(self.clock):
            _, commands = self.coordinator.start(self.tick())
            self.command(commands)

    def ack(self) -> None:
        update = self.updates.pop(self.rng.randrange(len(self.updates)))
        self.gateway.set_id(update.snapshot_id)
        self.command(self.coordinator.gateway_acked("g", update.snapshot_id, self.tick()))

    def notify(self) -> None:
        told = self.notifications.pop(self.rng.randrange(len(self.notifications)))
        self.at_node(told.node, lambda node, now: node.notify(told.snapshot_id, now))

    def step(self) -> None:
        steps = [(self.send, 8), (self.start, 4), (self.from_outside, 1), (self.to_outside, 1)]
        for pending, act, weight in (
            (self.in_transit, self.deliver, 8),
            (self.updates, self.ack, 3),
            (self.notifications, self.notify, 3),
        ):
            if pending:
                steps.append((act, weight))
        acts, weights = zip(*steps, strict=True)
        self.rng.choices(acts, weights)[0]()

    def drain(self) -> None:
        while self.in_transit or self.updates or self.notifications:
            pending = [act for queue, act in ((self.in_transit, self.deliver),
                                              (self.updates, self.ack),
                                              (self.notifications, self.notify)) if queue]
            self.rng.choice(pending)()

    # -- the truth, from times alone

    def crossed(self, k: int) -> list[int]:
        """Messages sent before the sender's cut k and received after the receiver's."""
        return sorted(
            m.ident for m in self.messages
            if m.sent_at < self.cut_at[m.sender][k] and m.received_at > self.cut_at[m.receiver][k]
        )


@settings(max_examples=120, deadline=None)
@given(
    name=st.sampled_from(["beaver", "lai-yang"]),
    nodes=st.integers(2, 4),
    space=st.sampled_from([IdSpace(2, 1), IdSpace(3, 2), IdSpace(3, 3), IdSpace(6, 16)]),
    steps=st.integers(10, 400),
    seed=st.integers(0, 2**32),
)
def test_every_snapshot_completes_with_exactly_the_messages_that_crossed_its_cut(
    name: str, nodes: int, space: IdSpace, steps: int, seed: int
) -> None:
    run = Run(name, nodes, space, random.Random(seed))
    for _ in range(steps):
        run.step()
    run.drain()
    coordinator = run.coordinator
    for status in coordinator.statuses():
        assert status.complete and status.valid and status.finished, status
    assert coordinator.oldest_unfinished == coordinator.newest + 1
    assert coordinator.rejected_reports == 0
    assert all(node.rejected == 0 for node in run.nodes.values())
    for k in range(1, coordinator.newest + 1):
        crossed = run.crossed(k)
        states = {n: run.state_at_cut[n][k] for n in run.names}
        sent = {i for own_sent, _ in states.values() for i in own_sent}
        received = {i for _, applied in states.values() for i in applied if isinstance(i, int)}
        assert received <= sent, f"snapshot {k} shows a message received but never sent"
        assert crossed == sorted(sent - received)
        snapshot = coordinator.assemble(k)
        assert snapshot.states == states
        assert sorted(r.message for r in snapshot.in_flight) == crossed
        assert run.recorded_at_completion[k] == crossed, f"snapshot {k} completed too early"


def test_a_lower_tau_min_revokes_validity_and_a_higher_one_changes_nothing() -> None:
    coordinator = Coordinator(["a"], gateways=["g"], tau_min=10.0)
    for k, update in ((1, 2.0), (2, 6.0), (3, 9.0)):
        coordinator.start(float(k * 100))
        coordinator.gateway_acked("g", k, k * 100 + update)
    assert [s.valid for s in coordinator.statuses()] == [True, True, True]
    assert coordinator.lower_tau_min(20.0) == [] and coordinator.tau_min == 10.0
    assert coordinator.lower_tau_min(6.0) == [2, 3]
    assert [s.valid for s in coordinator.statuses()] == [True, False, False]
    assert coordinator.lower_tau_min(1.0) == [1]
    assert coordinator.lower_tau_min(0.0) == [] and coordinator.tau_min == 1.0


# -- the packet lifetime: wire codes are not reused while old stamps may be in flight ------


def test_a_wire_code_is_reused_only_a_packet_lifetime_after_its_id_stopped_being_stamped():
    space = IdSpace(bits=3, window=3)
    coordinator = Coordinator(["a"], gateways=["g1"], space=space, packet_lifetime=0.5)
    for k in (1, 2, 3):
        coordinator.start(0.0)
        coordinator.gateway_acked("g1", k, 0.0)
        coordinator.add_local(local("a", k), 0.25)
    assert coordinator.oldest_unfinished == 4, "every snapshot finished at 0.25"
    assert not coordinator.can_start(0.5), "packets stamped 0..2 may still be in flight"
    assert coordinator.next_start_at() == 0.75
    with pytest.raises(RuntimeError, match="packets stamped 0 to leave the network"):
        coordinator.start(0.5)
    assert coordinator.can_start(0.75)
    assert coordinator.start(0.75)[0] == 4
    assert coordinator.oldest_on_wire(0.75) == 3


def test_without_a_packet_lifetime_the_old_window_rule_comes_back():
    coordinator = Coordinator(["a"], space=IdSpace(bits=3, window=1), packet_lifetime=0.0)
    coordinator.start(0.0)
    coordinator.add_local(local("a", 1), 0.0)
    assert coordinator.can_start(0.0)


def test_a_late_event_counts_from_the_latest_time_the_coordinator_was_told():
    """A report whose time is older than the coordinator's clock frees ids later, not earlier."""
    coordinator = Coordinator(["a", "b"], space=IdSpace(bits=3, window=1), packet_lifetime=1.0)
    coordinator.start(0.0)
    coordinator.add_local(local("a", 1), 5.0)
    coordinator.add_local(local("b", 1), 2.0)
    assert coordinator.status(1).finished
    assert coordinator.next_start_at() == 6.0
    assert not coordinator.can_start(5.5)
    assert coordinator.can_start(6.0)


@given(st.integers(2, 14), st.data())
@settings(max_examples=40, deadline=None)
def test_no_stamp_in_flight_ever_decodes_to_another_id(bits: int, data: st.DataObject) -> None:
    """Any id width and window: nodes told late, packets delayed up to the lifetime; every
    packet decodes, at its receiver, to the id it was stamped with."""
    space = IdSpace(bits, data.draw(st.integers(1, ((1 << bits) - 2) // 2), label="window"))
    lifetime = 1.0
    coordinator = Coordinator(["a", "b"], space=space, packet_lifetime=lifetime)
    nodes = {name: PiggybackNode(name, lambda: None, space) for name in ("a", "b")}
    due: list[tuple[float, int, tuple]] = []
    now, order = 0.0, 0
    for _ in range(data.draw(st.integers(10, 80), label="steps")):
        now += data.draw(st.floats(0.0, 0.5), label="pause")
        for at, _, event in sorted(e for e in due if e[0] <= now):
            if event[0] == "notify":
                for report in nodes[event[1]].notify(event[2], at).snapshots:
                    coordinator.add_local(report, at)
            else:
                _, receiver, wire, stamped = event
                assert space.from_wire(wire, nodes[receiver].current) == stamped
        due = [e for e in due if e[0] > now]
        if data.draw(st.booleans(), label="start") and coordinator.can_start(now):
            k, commands = coordinator.start(now)
            for command in commands:
                order += 1
                told = now + data.draw(st.floats(0.0, 2.0), label="notify delay")
                due.append((told, order, ("notify", command.node, k)))
        sender, receiver = data.draw(st.permutations(["a", "b"]), label="sender")
        stamped = nodes[sender].current
        order += 1
        delivered = now + data.draw(st.floats(0.0, lifetime), label="packet delay")
        due.append((delivered, order, ("packet", receiver, space.to_wire(stamped), stamped)))


def test_a_node_needs_no_notify_of_a_snapshot_its_report_covers() -> None:
    coordinator = Coordinator(NODES, tau_min=1.0)
    coordinator.start(0.0)
    coordinator.start(0.1)
    assert all(coordinator.needs_notify(node, 2) for node in NODES)
    coordinator.add_local(local("a", 1, 2), 0.2)
    coordinator.add_local(local("b", 1), 0.2)
    assert not coordinator.needs_notify("a", 1) and not coordinator.needs_notify("a", 2)
    assert not coordinator.needs_notify("b", 1) and coordinator.needs_notify("b", 2)
    assert coordinator.needs_notify("c", 1)
