"""The core's failure paths: lost answers, re-sending, gateways that crash and restart."""

from __future__ import annotations

import pytest

from beaver.coordinator import Coordinator
from beaver.gateway import Gateway
from beaver.ids import IdSpace
from beaver.records import LocalSnapshot, NotifyNode, UpdateGateway

NODES = ("a", "b")


def reported(coordinator: Coordinator, node: str, first: int, last: int) -> list[int]:
    return coordinator.add_local(LocalSnapshot(node, first, last, 0.0, None), 0.0)


def test_a_gateway_restarted_without_an_id_forwards_nothing_until_it_is_set() -> None:
    gateway = Gateway("g", IdSpace())
    gateway.set_id(5)
    gateway.restart(None)
    assert not gateway.ready
    with pytest.raises(RuntimeError, match="no snapshot id"):
        gateway.stamp()
    assert not gateway.observe_ingroup(IdSpace().to_wire(6))
    assert gateway.set_id(7) and gateway.ready and gateway.current == 7
    assert gateway.stamp() == IdSpace().to_wire(7)


def test_a_gateway_restarted_with_an_old_id_stamps_it() -> None:
    gateway = Gateway("g", IdSpace())
    gateway.set_id(5)
    gateway.restart(3)
    assert gateway.ready and gateway.stamp() == IdSpace().to_wire(3)


def test_a_safe_restart_gets_the_newest_id_and_revokes_nothing() -> None:
    coordinator = Coordinator(NODES, gateways=["g"], tau_min=1.0)
    for k in (1, 2):
        coordinator.start(0.0)
        coordinator.gateway_acked("g", k, 0.1)
    commands, revoked = coordinator.gateway_restarted("g", None, 0.5)
    assert commands == [UpdateGateway("g", 2)] and revoked == []
    assert all(status.valid for status in coordinator.statuses())


def test_a_restart_with_an_older_id_than_acknowledged_revokes_what_it_can_break() -> None:
    coordinator = Coordinator(NODES, gateways=["g", "h"], tau_min=1.0, space=IdSpace(6, 4))
    for k in (1, 2, 3):
        coordinator.start(0.0)
        coordinator.gateway_acked("g", k, 0.1)
        if k < 3:
            coordinator.gateway_acked("h", k, 0.1)
    assert [s.valid for s in coordinator.statuses()] == [True, True, None]
    commands, revoked = coordinator.gateway_restarted("g", 1, 0.5)
    assert commands == [UpdateGateway("g", 3)]
    assert revoked == [2], "snapshot 1 stays valid: the gateway still stamps at least 1"
    coordinator.gateway_acked("h", 3, 0.6)
    assert [s.valid for s in coordinator.statuses()] == [True, False, False]


def test_the_old_id_a_restarted_gateway_stamps_counts_as_alive() -> None:
    coordinator = Coordinator(NODES, gateways=["g"], tau_min=1.0, space=IdSpace(6, 2))
    for k in (1, 2):
        coordinator.start(0.0)
        coordinator.gateway_acked("g", k, 0.1)
        assert reported(coordinator, "a", k, k) == []
        assert reported(coordinator, "b", k, k) == [k]
    assert coordinator.can_start(1.0)
    coordinator.gateway_restarted("g", 0, 0.5)
    assert not coordinator.can_start(1.0), "id 0 is still stamped: id 3 would alias into its window"
    coordinator.gateway_acked("g", 2, 0.6)
    assert coordinator.can_start(1.0)


def test_an_unknown_gateway_cannot_restart() -> None:
    with pytest.raises(ValueError, match="unknown gateway"):
        Coordinator(NODES, gateways=["g"]).gateway_restarted("x", None, 0.0)


def test_nothing_is_sent_again_before_the_timeout() -> None:
    coordinator = Coordinator(NODES, gateways=["g"], tau_min=1.0, update_timeout=0.2)
    coordinator.start(0.0)
    assert coordinator.retransmit(0.1) == []


def test_a_lost_update_fails_after_the_timeout_and_the_newest_id_is_sent_again() -> None:
    coordinator = Coordinator(NODES, gateways=["g", "h"], tau_min=1.0, update_timeout=0.2)
    coordinator.start(0.0)
    coordinator.gateway_acked("h", 1, 0.05)
    coordinator.start(0.1)
    coordinator.gateway_acked("h", 2, 0.15)
    notices = coordinator.expire(0.25)
    assert [(c.node, c.snapshot_id) for c in notices] == [("a", 1), ("b", 1)]
    assert coordinator.status(1).valid is False and coordinator.status(1).failed_gateways == {"g"}
    assert coordinator.retransmit(0.25) == [UpdateGateway("g", 2),
                                            NotifyNode("a", 1), NotifyNode("b", 1)]
    coordinator.gateway_acked("g", 2, 0.3)
    assert coordinator.status(2).valid is True
    assert reported(coordinator, "a", 1, 2) == []
    assert reported(coordinator, "b", 1, 1) == [1]
    assert coordinator.retransmit(0.4) == [NotifyNode("b", 2)], "b has not reported 2"
    assert reported(coordinator, "b", 2, 2) == [2]
    assert coordinator.retransmit(0.5) == []
