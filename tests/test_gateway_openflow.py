"""The gateways' rules as OpenFlow 1.3 bytes: the ``current`` rule's flow-mod rewritten in place."""

from __future__ import annotations

from dataclasses import replace

import pytest
from os_ken.ofproto import ofproto_protocol, ofproto_v1_3

from controller.gateways.decisions import GatewayController
from controller.gateways.openflow import BarrierRequests, FlowModTemplate, flow_mod
from controller.gateways.pipeline import GATEWAY_PIPELINE
from controller.gateways.rules import Rule, SetField
from topologies.addressing import DataCenterParams, build_plan

PLAN = build_plan(DataCenterParams(gateways=2))
GATEWAY = PLAN.gateways[0].name
DATAPATH = ofproto_protocol.ProtocolDesc(ofproto_v1_3.OFP_VERSION)
IDS = [*range(0, 600), 2**31 - 2, 2**31 - 1, 2**31, 2**32 + 5, 2**47 + 3]
"""Every wire code and bitmap of the window several times over, and ids past 31 and 32 bits."""


def serialised(rule: Rule, xid: int) -> bytes:
    message = flow_mod(DATAPATH, GATEWAY_PIPELINE, rule)
    message.xid = xid
    message.serialize()
    return bytes(message.buf)


def current_rule(controller: GatewayController, snapshot_id: int) -> Rule:
    controller.gateways[GATEWAY].set_id(snapshot_id)
    return controller.current_rule(GATEWAY)


def test_the_rewritten_current_rule_is_the_flow_mod_os_ken_serialises() -> None:
    controller = GatewayController(PLAN)
    template = FlowModTemplate(DATAPATH, GATEWAY_PIPELINE, current_rule(controller, 0))
    for snapshot_id in IDS:
        rule = current_rule(controller, snapshot_id)
        xid = snapshot_id * 7 & 0xFFFFFFFF
        assert template.fits(rule)
        assert template.encode(rule, xid) == serialised(rule, xid), snapshot_id


def test_a_rule_of_another_shape_does_not_fit_the_template() -> None:
    controller = GatewayController(PLAN)
    rule = current_rule(controller, 5)
    template = FlowModTemplate(DATAPATH, GATEWAY_PIPELINE, rule)
    fewer = rule.actions[:-1]
    other_field = (*rule.actions[:-1], SetField("reg10", 1))
    for changed in (replace(rule, actions=fewer), replace(rule, actions=other_field),
                    replace(rule, priority=rule.priority + 1), controller.probe_rule(GATEWAY)):
        assert not template.fits(changed)
    with pytest.raises(ValueError):
        template.encode(replace(rule, actions=fewer), 1)


def test_barrier_requests_are_os_kens_with_a_fresh_xid_each() -> None:
    barriers = BarrierRequests()
    xids = [barriers.next_xid() for _ in range(100)]
    assert len(set(xids)) == len(xids)
    for xid in (*xids, 0, 0xFFFFFFFF):
        expected = DATAPATH.ofproto_parser.OFPBarrierRequest(DATAPATH)
        expected.xid = xid
        expected.serialize()
        assert barriers.request(xid) == bytes(expected.buf)
