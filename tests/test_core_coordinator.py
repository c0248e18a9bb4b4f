"""The snapshot coordinator: gateway phase, validity, window, completeness, reports."""

from __future__ import annotations

import copy
import math

import pytest

from beaver.core.coordinator import Coordinator, InvalidReport, Notify
from beaver.core.ids import IdSpace
from beaver.core.records import InFlight, LocalSnapshot, NotifyNode, UpdateGateway

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
        assert coordinator.can_start()
        assert coordinator.start(0.0)[0] == expected
    assert not coordinator.can_start()
    with pytest.raises(RuntimeError, match="wait for snapshot 1"):
        coordinator.start(0.0)
    assert coordinator.newest == 3
    assert coordinator.oldest_unfinished == 1


def test_only_finishing_the_oldest_snapshot_frees_the_window() -> None:
    coordinator = Coordinator(NODES, space=IdSpace(bits=3, window=2))
    coordinator.start(0.0)
    coordinator.start(0.0)
    assert not coordinator.can_start()
    for node in NODES:
        coordinator.add_local(local(node, 1, 2), 1.0)
    assert coordinator.status(2).finished and coordinator.status(1).finished
    assert coordinator.can_start()
    assert coordinator.start(2.0)[0] == 3


def test_a_complete_snapshot_waiting_for_its_gateways_keeps_the_window_full() -> None:
    coordinator = Coordinator(NODES, gateways=["g1"], space=IdSpace(bits=3, window=1))
    coordinator.start(0.0)
    assert finish_without_messages(coordinator, 1) == [1]
    assert coordinator.status(1).complete and not coordinator.status(1).finished
    assert not coordinator.can_start()
    coordinator.gateway_acked("g1", 1, 0.5)
    assert coordinator.status(1).finished
    assert coordinator.can_start()


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
        coordinator.can_start(),
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
