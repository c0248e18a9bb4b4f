"""The baselines (Chandy-Lamport markers, polling) and the protocol registry."""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from beaver.baselines import MarkerNode, PollingNode
from beaver.coordinator import Coordinator
from beaver.ids import UNMARKED, IdSpace
from beaver.node import PiggybackNode
from beaver.protocols import PROTOCOLS, protocol
from beaver.records import InFlight, LocalSnapshot, Marker, NotifyNode, Receipt
from beaver.snapshot_status import Notify

# -- Chandy-Lamport, one node at a time -----------------------------------------------------


def marker_node(name: str = "b", peers: tuple[str, ...] = ("a", "b", "c", "d")) -> MarkerNode:
    states = iter(range(100))
    return MarkerNode(name, peers, lambda: f"{name}-state-{next(states)}")


def test_data_messages_are_unmarked_and_unrecorded_before_any_marker() -> None:
    node = marker_node()
    assert node.send("a", 0.0) == UNMARKED
    assert node.receive(UNMARKED, "a", 0.5, "m") == Receipt()
    assert node.current == 0


def test_the_first_marker_records_the_state_and_sends_a_marker_to_every_peer() -> None:
    node = marker_node()
    receipt = node.receive_marker(Marker(1), "a", 1.0)
    assert receipt.outgoing == (("a", Marker(1)), ("c", Marker(1)), ("d", Marker(1)))
    assert receipt.snapshots == (), "channels from c and d are still open"
    assert node.current == 1
    again = node.receive_marker(Marker(1), "c", 2.0)
    assert again.outgoing == () and again.snapshots == ()


def test_a_channel_is_recorded_until_its_marker_and_the_report_waits_for_all() -> None:
    node = marker_node()
    node.receive_marker(Marker(1), "a", 1.0)
    assert node.receive(UNMARKED, "a", 1.5, "after a's marker") == Receipt()
    assert node.receive(UNMARKED, "c", 2.0, "c1").in_flight == (
        InFlight("b", "c", 1, 1, "c1", 2.0),
    )
    assert node.receive_marker(Marker(1), "c", 3.0) == Receipt()
    assert node.receive(UNMARKED, "c", 3.5, "c2") == Receipt()
    assert node.receive(UNMARKED, "d", 4.0, "d1").in_flight == (
        InFlight("b", "d", 1, 1, "d1", 4.0),
    )
    receipt = node.receive_marker(Marker(1), "d", 5.0)
    assert receipt.snapshots == (LocalSnapshot("b", 1, 1, 1.0, "b-state-0"),)
    assert receipt.outgoing == ()
    assert node.receive(UNMARKED, "d", 6.0, "d2") == Receipt()


def test_the_initiator_sends_markers_and_a_lone_node_reports_at_once() -> None:
    node = marker_node("a")
    receipt = node.notify(1, 1.0)
    assert receipt.outgoing == (("b", Marker(1)), ("c", Marker(1)), ("d", Marker(1)))
    assert receipt.snapshots == ()
    lone = MarkerNode("solo", ["solo"], lambda: "solo-state")
    assert lone.notify(1, 1.0).snapshots == (LocalSnapshot("solo", 1, 1, 1.0, "solo-state"),)


def test_a_data_message_is_recorded_for_every_snapshot_whose_channel_is_open() -> None:
    node = marker_node(peers=("a", "b", "c"))
    node.receive_marker(Marker(1), "a", 1.0)
    node.receive_marker(Marker(2), "a", 2.0)
    receipt = node.receive(UNMARKED, "c", 3.0, "m")
    assert receipt.in_flight == (
        InFlight("b", "c", 1, 1, "m", 3.0),
        InFlight("b", "c", 2, 2, "m", 3.0),
    )
    node.receive_marker(Marker(1), "c", 4.0)
    assert node.receive(UNMARKED, "c", 5.0, "n").in_flight == (InFlight("b", "c", 2, 2, "n", 5.0),)


# -- Chandy-Lamport, a whole run over FIFO channels ------------------------------------------


class Bank:
    """Three accounts moving money over FIFO channels; the total never changes."""

    def __init__(self) -> None:
        self.coordinator = protocol("chandy-lamport").coordinator(["a", "b", "c"])
        self.balance = dict.fromkeys("abc", 100)
        self.nodes = {
            n: MarkerNode(n, "abc", lambda n=n: self.balance[n]) for n in "abc"
        }
        self.channels: dict[tuple[str, str], deque] = {
            (s, r): deque() for s in "abc" for r in "abc" if s != r
        }
        self.reported: list[str] = []

    def transfer(self, sender: str, receiver: str, amount: int) -> None:
        self.nodes[sender].send(receiver, 0.0)
        self.balance[sender] -= amount
        self.channels[sender, receiver].append(amount)

    def start(self) -> None:
        _, commands = self.coordinator.start(0.0)
        (command,) = commands
        self.report(command.node, self.nodes[command.node].notify(command.snapshot_id, 0.0))

    def deliver(self, sender: str, receiver: str) -> None:
        item = self.channels[sender, receiver].popleft()
        node = self.nodes[receiver]
        if isinstance(item, Marker):
            receipt = node.receive_marker(item, sender, 0.0)
        else:
            receipt = node.receive(UNMARKED, sender, 0.0, item)
            assert receipt.deliver
            self.balance[receiver] += item
        self.report(receiver, receipt)

    def report(self, node: str, receipt: Receipt) -> None:
        for peer, marker in receipt.outgoing:
            self.channels[node, peer].append(marker)
        for record in receipt.in_flight:
            self.coordinator.add_in_flight(record, 0.0)
        for local in receipt.snapshots:
            self.reported.append(local.node)
            self.coordinator.add_local(local, 0.0)


def test_a_scripted_fifo_run_gives_a_consistent_snapshot_with_exact_channel_state() -> None:
    bank = Bank()
    bank.transfer("a", "b", 10)
    bank.transfer("b", "c", 20)
    bank.start()  # a records 90 and sends markers to b and c
    bank.transfer("c", "a", 5)  # sent before c's snapshot, arrives after a's
    bank.deliver("c", "a")
    bank.deliver("a", "b")  # the 10, before b's snapshot
    bank.deliver("a", "b")  # a's marker: b records 90
    bank.transfer("b", "a", 7)  # after b's snapshot, behind b's marker
    bank.deliver("b", "c")  # the 20, before c's snapshot
    bank.deliver("a", "c")  # a's marker: c records 115
    bank.deliver("b", "c")  # b's marker closes c's last channel
    assert bank.reported == ["c"]
    bank.deliver("c", "a")
    bank.deliver("b", "a")  # b's marker closes a's last channel
    bank.deliver("b", "a")  # the 7: after the marker, not channel state
    assert bank.reported == ["c", "a"]
    assert not bank.coordinator.status(1).complete
    bank.deliver("c", "b")
    assert bank.reported == ["c", "a", "b"]
    assert all(not channel for channel in bank.channels.values())
    snapshot = bank.coordinator.assemble(1)
    assert snapshot.status.complete
    assert snapshot.states == {"a": 90, "b": 90, "c": 115}
    assert [(r.sender, r.receiver, r.message) for r in snapshot.in_flight] == [("c", "a", 5)]
    assert sum(snapshot.states.values()) + sum(r.message for r in snapshot.in_flight) == 300


@dataclass
class Sent:
    ident: int
    sender: str
    receiver: str
    sent_at: int
    received_at: int | None = None


@settings(max_examples=60, deadline=None)
@given(nodes=st.integers(2, 4), steps=st.integers(5, 200), seed=st.integers(0, 2**32))
def test_random_fifo_runs_record_exactly_the_messages_that_crossed_each_cut(
    nodes: int, steps: int, seed: int
) -> None:
    """Concurrent snapshots over FIFO channels; the truth comes from send, receive and cut times."""
    rng = random.Random(seed)
    names = [f"n{i}" for i in range(nodes)]
    coordinator = protocol("chandy-lamport").coordinator(names)
    cut_at: dict[str, dict[int, int]] = {n: {} for n in names}
    machines = {n: protocol("chandy-lamport").node(n, lambda: None, peers=names) for n in names}
    channels: dict[tuple[str, str], deque] = {
        (s, r): deque() for s in names for r in names if s != r
    }
    messages: list[Sent] = []
    markers = 0
    clock = 0

    def at(name: str, act) -> None:
        nonlocal clock, markers
        clock += 1
        machine = machines[name]
        before = machine.current
        receipt = act(machine)
        for k in range(before + 1, machine.current + 1):
            cut_at[name][k] = clock
        for peer, marker in receipt.outgoing:
            channels[name, peer].append(marker)
            markers += 1
        for record in receipt.in_flight:
            coordinator.add_in_flight(record, float(clock))
        for local in receipt.snapshots:
            coordinator.add_local(local, float(clock))

    def step(draining: bool) -> None:
        nonlocal clock
        busy = [pair for pair, queue in channels.items() if queue]
        choice = rng.random()
        if not draining and choice < 0.1 and coordinator.can_start(float(clock)):
            (told,) = coordinator.start(float(clock))[1]
            at(told.node, lambda m: m.notify(told.snapshot_id, float(clock)))
        elif not draining and (choice < 0.5 or not busy):
            sender, receiver = rng.sample(names, 2)
            clock += 1
            machines[sender].send(receiver, float(clock))
            message = Sent(len(messages), sender, receiver, clock)
            messages.append(message)
            channels[sender, receiver].append(message)
        else:
            sender, receiver = rng.choice(busy)
            item = channels[sender, receiver].popleft()
            if isinstance(item, Marker):
                at(receiver, lambda m: m.receive_marker(item, sender, float(clock)))
            else:
                at(receiver, lambda m: m.receive(UNMARKED, sender, float(clock), item.ident))
                item.received_at = clock

    for _ in range(steps):
        step(draining=False)
    while any(channels.values()):
        step(draining=True)
    assert markers == coordinator.newest * nodes * (nodes - 1)
    for status in coordinator.statuses():
        assert status.complete and status.finished
    for k in range(1, coordinator.newest + 1):
        crossed = sorted(
            m.ident for m in messages
            if m.sent_at < cut_at[m.sender][k] and m.received_at > cut_at[m.receiver][k]
        )
        assert sorted(r.message for r in coordinator.assemble(k).in_flight) == crossed


# -- polling ---------------------------------------------------------------------------------


def test_polling_snapshots_on_notify_only() -> None:
    captured = iter(range(10))
    node = PollingNode("a", lambda: next(captured))
    assert node.send("b", 0.0) == UNMARKED
    for wire in (UNMARKED, IdSpace().to_wire(5)):
        receipt = node.receive(wire, "b", 1.0, "m")
        assert receipt.deliver and receipt.snapshots == () and receipt.in_flight == ()
    assert node.current == 0
    assert node.notify(3, 2.0).snapshots == (LocalSnapshot("a", 1, 3, 2.0, 0),)
    assert node.notify(3, 3.0).snapshots == ()
    assert node.notify(2, 3.0).snapshots == ()
    assert node.notify(4, 4.0).snapshots == (LocalSnapshot("a", 4, 4, 4.0, 1),)


def test_polling_completes_when_every_node_answered() -> None:
    polling = protocol("polling")
    coordinator = polling.coordinator(["a", "b"], gateways=["g1"])
    _, commands = coordinator.start(0.0)
    assert commands == [NotifyNode("a", 1), NotifyNode("b", 1)]
    nodes = {n: polling.node(n, lambda n=n: n.upper()) for n in "ab"}
    assert coordinator.add_local(nodes["a"].notify(1, 1.0).snapshots[0], 1.0) == []
    assert coordinator.add_local(nodes["b"].notify(1, 2.0).snapshots[0], 2.0) == [1]
    assert coordinator.assemble(1).states == {"a": "A", "b": "B"}


# -- the registry ----------------------------------------------------------------------------


def test_an_unknown_protocol_name_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown protocol 'beavr'") as raised:
        protocol("beavr")
    for name in ("beaver", "lai-yang", "chandy-lamport", "polling"):
        assert name in str(raised.value)


def test_the_registry_holds_the_four_protocols_by_name() -> None:
    assert sorted(PROTOCOLS) == ["beaver", "chandy-lamport", "lai-yang", "polling"]
    assert all(protocol(name).name == name for name in PROTOCOLS)


@pytest.mark.parametrize(
    ("name", "node_type", "keeps_gateways", "notify", "counts_channels"),
    [
        ("beaver", PiggybackNode, True, Notify.ALL, True),
        ("lai-yang", PiggybackNode, False, Notify.ALL, True),
        ("chandy-lamport", MarkerNode, False, Notify.INITIATOR, False),
        ("polling", PollingNode, False, Notify.ALL, False),
    ],
)
def test_each_protocol_makes_its_own_node_and_coordinator(
    name: str, node_type: type, keeps_gateways: bool, notify: Notify, counts_channels: bool
) -> None:
    chosen = protocol(name)
    space = IdSpace(bits=3, window=2)
    node = chosen.node("a", lambda: None, peers=["a", "b", "c"], space=space)
    assert type(node) is node_type
    assert node.name == "a" and node.current == 0
    if isinstance(node, PiggybackNode):
        assert node.space is space
    if isinstance(node, MarkerNode):
        assert node.peers == ("b", "c")
    coordinator = chosen.coordinator(["a", "b"], gateways=["g1"], tau_min=0.5, space=space,
                                     update_timeout=2.0)
    assert type(coordinator) is Coordinator
    assert coordinator.gateways == (("g1",) if keeps_gateways else ())
    assert coordinator.notify is notify
    assert coordinator.counts_channels is counts_channels
    assert (coordinator.tau_min, coordinator.space, coordinator.update_timeout) == (0.5, space, 2.0)
    assert chosen.uses_gateways is keeps_gateways
