"""The controller's decisions as plain objects: id updates, optimistic marking, balancing."""

from __future__ import annotations

from beaver.ids import tos_fields
from controller.gateways.decisions import (
    GatewayController,
    Install,
    PacketOut,
    ReplaceCurrent,
)
from controller.gateways.maglev import FlowKey, MaglevTable
from controller.gateways.registers import ahead_actions, current_actions
from controller.gateways.rules import Output, Rule, SetField
from controller.gateways.stamping import stamp_mark
from topologies.addressing import DataCenterParams, build_plan

PLAN = build_plan(DataCenterParams(gateways=3))
GATEWAYS = [g.name for g in PLAN.gateways]


def connected_controller() -> GatewayController:
    controller = GatewayController(PLAN)
    for switch in PLAN.switches:
        controller.on_connect(switch.name)
    return controller


def tos_of_match(rule: Rule) -> tuple[int, int]:
    """The (DSCP, ECN) an observe rule matches."""
    return rule.match_dict["ip_dscp"], rule.match_dict["ip_ecn"]


def holding(controller: GatewayController, snapshot_id: int) -> tuple[SetField, ...]:
    """The actions of a ``current`` rule that holds ``snapshot_id``."""
    space = controller.space
    return current_actions(space.to_wire(snapshot_id), stamp_mark(snapshot_id),
                           ahead_actions(space.ahead_wires(snapshot_id)))


def test_the_gateways_use_the_emulation_s_ten_bit_codes_and_observe_by_tos_byte() -> None:
    controller = connected_controller()
    assert controller.space.codes == 1023
    observe = controller.observe_rules(GATEWAYS[0])
    assert len(observe) == 256, "one observe rule per TOS byte, TOS 0 too (codes 256, 512..)"
    assert {tos_of_match(r) for r in observe} == {tos_fields(tos) for tos in range(256)}


def test_an_update_is_one_flow_mod_per_gateway_on_its_current_rule() -> None:
    controller = connected_controller()
    update, ops = controller.start_update(4, now=10.0)
    assert [type(op) for op in ops] == [ReplaceCurrent] * 3
    assert [op.rule.switch for op in ops] == GATEWAYS
    for op in ops:
        assert isinstance(op, ReplaceCurrent) and op.rule.table == "current"
        assert op.rule.actions == holding(controller, 4)
        assert op.snapshot_id == 4 and op.rule.cookie & 0xFFFF == 4
    assert not update.complete and not update.settled


def test_only_the_current_rule_changes_with_the_id() -> None:
    controller = connected_controller()
    before = {op.rule for op in controller.on_connect(GATEWAYS[0])}
    controller.start_update(70, now=0.0)
    after = {op.rule for op in controller.on_connect(GATEWAYS[0])}
    assert {r.table for r in before ^ after} == {"current"}
    assert len(before - after) == len(after - before) == 1


def test_update_completes_when_every_gateway_acked() -> None:
    controller = connected_controller()
    update, _ = controller.start_update(1, now=0.0)
    for offset, name in enumerate(GATEWAYS):
        controller.stamp_sent(name, now=1.0 + offset)
        controller.stamp_acked(name, now=2.0 + offset)
    assert update.complete and update.settled and update.failed == set()
    assert update.to_dict()["gateways"][GATEWAYS[2]] == {
        "sent_at": 3.0, "acked_at": 4.0, "failure": None}


def test_gateway_disconnecting_during_update_fails_it_for_good() -> None:
    controller = connected_controller()
    update, _ = controller.start_update(2, now=0.0)
    for name in GATEWAYS:
        controller.stamp_sent(name, now=0.1)
    controller.stamp_acked(GATEWAYS[0], now=0.2)
    settled = controller.on_disconnect(GATEWAYS[1])
    assert settled == []  # the third gateway has not answered yet
    controller.stamp_acked(GATEWAYS[2], now=0.3)
    controller.stamp_acked(GATEWAYS[1], now=0.4)  # a late reply does not revive it
    assert update.settled and not update.complete
    assert update.failed == {GATEWAYS[1]}
    assert update.gateways[GATEWAYS[1]].acked_at is None


def test_disconnected_gateway_fails_at_once_but_stamps_the_new_id_when_back() -> None:
    controller = connected_controller()
    controller.on_disconnect(GATEWAYS[0])
    update, ops = controller.start_update(3, now=0.0)
    assert update.failed == {GATEWAYS[0]}
    assert all(op.rule.switch != GATEWAYS[0] for op in ops if isinstance(op, ReplaceCurrent))
    currents = [op.rule for op in controller.on_connect(GATEWAYS[0])
                if isinstance(op, Install) and op.rule.table == "current"]
    assert [r.actions for r in currents] == [holding(controller, 3)]


def test_expired_update_reports_the_silent_gateways() -> None:
    controller = connected_controller()
    update, _ = controller.start_update(1, now=0.0)
    controller.stamp_acked(GATEWAYS[0], now=0.1)
    controller.expire(update, "timeout")
    assert update.failed == set(GATEWAYS[1:]) and not update.complete


def test_updates_beyond_the_depth_wait_and_go_out_as_one_flow_mod() -> None:
    controller = connected_controller()  # stamp_depth 2
    gateway = GATEWAYS[0]
    updates = []
    for k in (1, 2, 3, 4, 5):
        update, ops = controller.start_update(k, now=float(k))
        updates.append(update)
        stamps = [op for op in ops if isinstance(op, ReplaceCurrent)]
        assert len(stamps) == (3 if k <= 2 else 0), k  # 1 and 2 pipelined, 3-5 wait
        assert all(op.acknowledged for op in stamps)
        for op in stamps:
            controller.stamp_sent(op.rule.switch, now=k + 0.1)
    assert controller.stamp_acked(gateway, now=6.0)[0] == ReplaceCurrent(
        controller.current_rule(gateway), 5, acknowledged=True)
    controller.stamp_sent(gateway, now=6.1)
    assert updates[0].gateways[gateway].acked_at == 6.0
    assert all(u.gateways[gateway].acked_at is None for u in updates[1:])
    assert controller.stamp_acked(gateway, now=7.0) == []  # update 2's barrier
    assert controller.stamp_acked(gateway, now=8.0) == []  # the one for 3, 4 and 5
    assert [u.gateways[gateway].acked_at for u in updates] == [6.0, 7.0, 8.0, 8.0, 8.0]
    assert [u.gateways[gateway].sent_at for u in updates] == [1.1, 2.1, 6.1, 6.1, 6.1]
    assert not any(u.settled for u in updates)  # the other gateways never answered


def test_a_gateway_that_reconnects_starts_with_an_empty_lane() -> None:
    controller = connected_controller()
    gateway = GATEWAYS[0]
    waiting = [controller.start_update(k, now=float(k))[0] for k in (1, 2, 3)]
    controller.on_disconnect(gateway)
    assert all(gateway in u.failed for u in waiting)
    controller.on_connect(gateway)
    update, ops = controller.start_update(4, now=4.0)
    assert gateway in {op.rule.switch for op in ops if isinstance(op, ReplaceCurrent)}


def test_ids_never_go_back() -> None:
    controller = connected_controller()
    controller.start_update(5, now=0.0)
    controller.start_update(3, now=1.0)
    assert controller.ids() == dict.fromkeys(GATEWAYS, 5)


def test_ingroup_copy_with_newer_id_restamps_only_that_gateway() -> None:
    controller = connected_controller()
    space = controller.space
    ops = controller.on_ingroup_copy(GATEWAYS[1], space.to_wire(2))
    assert controller.ids() == {GATEWAYS[0]: 0, GATEWAYS[1]: 2, GATEWAYS[2]: 0}
    [current] = ops
    assert isinstance(current, ReplaceCurrent) and current.rule.switch == GATEWAYS[1]
    assert current.rule.actions == holding(controller, 2) and not current.acknowledged
    assert controller.on_ingroup_copy(GATEWAYS[1], space.to_wire(1)) == []


def test_balance_miss_pins_the_flow_to_the_maglev_backend() -> None:
    controller = connected_controller()
    service = PLAN.services[0]
    flow = FlowKey(6, PLAN.externals[0].ip, service.vip, 33000, 443)
    expected = PLAN.host(MaglevTable(service.backends).lookup(flow))
    for gateway in GATEWAYS:
        install, packet_out = controller.on_balance_miss(gateway, flow)
        assert isinstance(install, Install) and isinstance(packet_out, PacketOut)
        assert install.rule.match_dict == {
            "eth_type": 0x0800, "ip_proto": 6, "ipv4_src": flow.src, "ipv4_dst": flow.dst,
            "tcp_src": 33000, "tcp_dst": 443}
        assert SetField("ipv4_dst", expected.dip) in install.rule.actions
        assert SetField("eth_dst", expected.mac) in packet_out.actions
        assert isinstance(packet_out.actions[-1], Output)


def test_flow_to_an_unused_vip_is_dropped() -> None:
    controller = connected_controller()
    flow = FlowKey(17, PLAN.externals[0].ip, "10.100.0.250", 1, 2)
    assert controller.on_balance_miss(GATEWAYS[0], flow) == []
