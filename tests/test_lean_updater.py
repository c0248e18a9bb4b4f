"""The lean update loop of ``bench_gateways.py --updater lean``: its bytes are the controller's,
its reader frames OpenFlow messages, and its options are checked."""

from __future__ import annotations

import pytest
from os_ken.ofproto import ofproto_v1_3

from benchmarks.lean_updater import DATAPATH, UpdateMessages, chosen_updaters
from controller.gateways.decisions import GatewayController
from controller.gateways.openflow import HEADER, flow_mod, take_messages
from controller.gateways.pipeline import GATEWAY_PIPELINE
from topologies.addressing import DataCenterParams, build_plan

PLAN = build_plan(DataCenterParams(gateways=2))


def header(kind: int, length: int, xid: int) -> bytes:
    return HEADER.pack(ofproto_v1_3.OFP_VERSION, kind, length, xid)


def test_each_gateway_gets_the_controllers_current_rule_flow_mod_then_a_barrier() -> None:
    messages, controller = UpdateMessages(PLAN), GatewayController(PLAN)
    for snapshot_id in (1, 2, 300, 1023, 1024, 5000):
        for gateway, data in zip(messages.gateways, messages.of(snapshot_id), strict=True):
            flow, barrier = take_messages(bytearray(data))
            controller.gateways[gateway].set_id(snapshot_id)
            expected = flow_mod(DATAPATH, GATEWAY_PIPELINE, controller.current_rule(gateway))
            expected.xid = flow[1]
            expected.serialize()
            assert flow[2] == bytes(expected.buf), (gateway, snapshot_id)
            kind, xid, whole = barrier
            assert (kind, whole) == (ofproto_v1_3.OFPT_BARRIER_REQUEST,
                                     header(ofproto_v1_3.OFPT_BARRIER_REQUEST, 8, xid))


def test_complete_messages_are_taken_and_a_partial_one_stays() -> None:
    reply = header(ofproto_v1_3.OFPT_BARRIER_REPLY, 8, 7)
    echo = header(ofproto_v1_3.OFPT_ECHO_REQUEST, 12, 9) + b"ping"
    buffer = bytearray(reply + echo + echo[:5])
    assert take_messages(buffer) == [(ofproto_v1_3.OFPT_BARRIER_REPLY, 7, reply),
                                     (ofproto_v1_3.OFPT_ECHO_REQUEST, 9, echo)]
    assert buffer == echo[:5]
    buffer += echo[5:]
    assert take_messages(buffer) == [(ofproto_v1_3.OFPT_ECHO_REQUEST, 9, echo)]
    assert buffer == b""


def test_a_message_shorter_than_its_header_is_refused() -> None:
    with pytest.raises(ValueError, match="length 4"):
        take_messages(bytearray(header(ofproto_v1_3.OFPT_BARRIER_REPLY, 4, 1)))


def test_updaters_are_checked_against_what_the_lean_loop_does() -> None:
    assert chosen_updaters("controller,lean", 1, ["purge"]) == ["controller", "lean"]
    assert chosen_updaters("controller", 8, ["watch"]) == ["controller"]
    with pytest.raises(ValueError, match="unknown --updater fast"):
        chosen_updaters("lean,fast", 1, ["purge"])
    with pytest.raises(ValueError, match="--in-flight 1"):
        chosen_updaters("lean", 4, ["purge"])
    with pytest.raises(ValueError, match="--datapath-sync purge"):
        chosen_updaters("lean", 1, ["purge", "watch"])
