"""The gateway pipeline is declared as data; every rule the controller makes respects it."""

from __future__ import annotations

import pytest

from controller.gateways.decisions import GatewayController, Install, ReplaceCurrent
from controller.gateways.maglev import FlowKey
from controller.gateways.pipeline import (
    FABRIC_PIPELINE,
    GATEWAY_PIPELINE,
    Purpose,
    Table,
    UndeclaredJump,
    check_rules,
    cookie,
    purpose_of,
    table,
)
from controller.gateways.rules import Rule, match
from topologies.addressing import DataCenterParams, build_plan

PLAN = build_plan(DataCenterParams(gateways=3, services=2))


def check_pipeline(pipeline: tuple[Table, ...]) -> None:
    """Table ids are unique and every jump goes to a declared, later table.

    The pipelines are constants, so this is checked here once rather than on every start.
    """
    ids = [t.table_id for t in pipeline]
    if len(set(ids)) != len(ids):
        raise ValueError(f"duplicate table ids in pipeline: {ids}")
    for declared in pipeline:
        for name in declared.next_tables:
            target = table(pipeline, name)
            if target.table_id <= declared.table_id:
                raise ValueError(f"table {declared.name!r} jumps back to {name!r}")


def all_gateway_rules(controller: GatewayController) -> list[Rule]:
    rules: list[Rule] = []
    for gateway in controller.gateways:
        for op in controller.on_connect(gateway):
            assert isinstance(op, Install)
            rules.append(op.rule)
    flow = FlowKey(17, PLAN.externals[0].ip, PLAN.services[0].vip, 1234, 80)
    rules.extend(op.rule for op in controller.on_balance_miss(PLAN.gateways[0].name, flow)
                 if isinstance(op, Install))
    _, ops = controller.start_update(5, now=0.0)
    rules.extend(op.rule for op in ops if isinstance(op, ReplaceCurrent))
    return rules


def test_declared_pipelines_are_consistent() -> None:
    check_pipeline(GATEWAY_PIPELINE)
    check_pipeline(FABRIC_PIPELINE)
    assert [t.table_id for t in GATEWAY_PIPELINE] == list(range(len(GATEWAY_PIPELINE)))


def test_pipeline_with_a_backward_jump_is_rejected() -> None:
    looping = (Table("a", 0, ("b",), ""), Table("b", 1, ("a",), ""))
    with pytest.raises(ValueError, match="jumps back"):
        check_pipeline(looping)


def test_every_generated_gateway_rule_jumps_only_to_declared_tables() -> None:
    controller = GatewayController(PLAN)
    rules = all_gateway_rules(controller)
    assert {r.table for r in rules} == {t.name for t in GATEWAY_PIPELINE}
    check_rules(GATEWAY_PIPELINE, rules)


def test_fabric_rules_stay_in_their_single_table() -> None:
    controller = GatewayController(PLAN)
    fabric = [s.name for s in PLAN.switches if s.role != "gateway"]
    rules = [op.rule for name in fabric for op in controller.on_connect(name)
             if isinstance(op, Install)]
    assert rules and all(r.goto is None for r in rules)
    check_rules(FABRIC_PIPELINE, rules)


def test_a_jump_to_an_undeclared_table_fails() -> None:
    skipping = Rule("g", "classify", 1, match(), goto="balance")
    with pytest.raises(UndeclaredJump, match="'classify' to 'balance'"):
        check_rules(GATEWAY_PIPELINE, [skipping])
    with pytest.raises(KeyError, match="nowhere"):
        check_rules(GATEWAY_PIPELINE, [Rule("g", "nowhere", 1, match())])


def test_cookies_name_the_purpose_and_table_lookup_is_by_name() -> None:
    assert purpose_of(cookie(Purpose.STAMP, 42)) is Purpose.STAMP
    assert cookie(Purpose.STAMP, 42) & 0xFFFF == 42
    assert table(GATEWAY_PIPELINE, "balance").table_id == 4
