"""Where packets go under the controller's rules, asked of a software model of the fabric."""

from __future__ import annotations

import itertools

import pytest
from fake_flowtable import FlowTables, Trace
from hypothesis import given, settings
from hypothesis import strategies as st

from beaver.ids import TTL_ENTROPY, ipv4_code, ipv4_marks, ipv4_space, tos_fields
from controller.gateways.decisions import GatewayController, Install, ReplaceCurrent
from controller.gateways.maglev import FlowKey
from controller.gateways.rules import (
    HashSpread,
    dropped_ttls,
    fabric_rules,
    loss_rules,
    lost_share,
)
from topologies.addressing import DataCenterParams, build_plan

PLAN = build_plan(DataCenterParams(spines=2, leaves=3, hosts_per_leaf=2, gateways=3, services=2))
SPACE = ipv4_space()
GATEWAYS = [g.name for g in PLAN.gateways]


def fabric(controller: GatewayController) -> FlowTables:
    rules = [op.rule for s in PLAN.switches for op in controller.on_connect(s.name)
             if isinstance(op, Install)]
    return FlowTables(PLAN, rules)


def marks(code: int, entropy: int = 0) -> dict:
    """The header fields that carry wire code ``code``: the TOS byte's DSCP and ECN fields
    and the TTL (with ``entropy``)."""
    tos, ttl = ipv4_marks(code, entropy)
    dscp, ecn = tos_fields(tos)
    return {"ip_dscp": dscp, "ip_ecn": ecn, "nw_ttl": ttl}


def udp(src: str, dst: str, sport: int = 5000, dport: int = 80, code: int = 0,
        entropy: int = 0) -> dict:
    """A UDP packet whose header carries wire code ``code`` and TTL entropy ``entropy``."""
    return {"eth_type": 0x0800, "ip_proto": 17, "ipv4_src": src, "ipv4_dst": dst,
            "udp_src": sport, "udp_dst": dport, **marks(code, entropy)}


def tos_of(packet: dict) -> tuple[int, int]:
    """The (DSCP, ECN) fields a packet left the model with."""
    return packet["ip_dscp"], packet["ip_ecn"]


def code_of(packet: dict) -> int:
    """The wire code a packet left the model with (its TOS byte and TTL bits)."""
    return ipv4_code(packet["ip_dscp"] << 2 | packet["ip_ecn"], packet["nw_ttl"])


def via(gateway: str):
    index = GATEWAYS.index(gateway)
    return lambda ports, packet: index


def send_through(tables: FlowTables, controller: GatewayController, host: str, packet: dict,
                 gateway: str) -> Trace:
    """Send; on a balance miss let the controller decide (as the app does), then resend."""
    trace = tables.send_from(host, packet, via(gateway))
    misses = [c for c in trace.to_controller if c[1] == "balance"]
    if misses:
        _, _, seen = misses[0]
        flow = FlowKey(seen["ip_proto"], seen["ipv4_src"], seen["ipv4_dst"],
                       seen["udp_src"], seen["udp_dst"])
        for op in controller.on_balance_miss(gateway, flow):
            if isinstance(op, Install):
                tables.add(op.rule)
        trace = tables.send_from(host, packet, via(gateway))
    return trace


@pytest.fixture
def controller() -> GatewayController:
    return GatewayController(PLAN)


def test_first_packet_of_a_flow_goes_to_the_controller_already_stamped(controller) -> None:
    tables = fabric(controller)
    client, service = PLAN.externals[0], PLAN.services[0]
    trace = tables.send_from(client.name, udp(client.ip, service.vip), via(GATEWAYS[0]))
    assert trace.delivered_to is None
    [(switch, table, seen)] = trace.to_controller
    assert (switch, table) == (GATEWAYS[0], "balance")
    assert code_of(seen) == SPACE.to_wire(0)


def test_out_group_flow_reaches_the_same_backend_through_every_gateway(controller) -> None:
    tables = fabric(controller)
    client, service = PLAN.externals[1], PLAN.services[1]
    packet = udp(client.ip, service.vip, sport=40000)
    expected = controller.backend_for(FlowKey(17, client.ip, service.vip, 40000, 80))
    for gateway in GATEWAYS:
        trace = send_through(tables, controller, client.name, packet, gateway)
        assert trace.delivered_to == expected.name
        assert trace.packet["ipv4_dst"] == expected.dip
        assert [s for s in trace.switches if s in GATEWAYS] == [gateway]
        assert expected.name in service.backends


def test_gateways_stamp_their_current_id_on_out_group_traffic(controller) -> None:
    tables = fabric(controller)
    client, service = PLAN.externals[0], PLAN.services[0]
    controller.gateways[GATEWAYS[2]].set_id(7)
    tables.add(controller.current_rule(GATEWAYS[2]))
    trace = send_through(tables, controller, client.name,
                         udp(client.ip, service.vip, code=0xC2), GATEWAYS[2])
    assert trace.delivered_to is not None and code_of(trace.packet) == SPACE.to_wire(7)


def test_a_gateway_stamps_a_code_that_needs_the_ecn_bits_over_both_fields(controller) -> None:
    tables = fabric(controller)
    client, service = PLAN.externals[0], PLAN.services[0]
    newest = 2 * 64 + 2  # its code, 131 = 0b10000011: DSCP 32 and ECN 3
    controller.gateways[GATEWAYS[0]].set_id(newest)
    tables.add(controller.current_rule(GATEWAYS[0]))
    trace = send_through(tables, controller, client.name, udp(client.ip, service.vip),
                         GATEWAYS[0])
    assert tos_of(trace.packet) == tos_fields(SPACE.to_wire(newest)) == (32, 3)


@pytest.mark.parametrize("newest", [255, 256, 600, 1022, 1023 + 700])
def test_a_gateway_stamps_the_codes_top_bits_into_the_ttl_and_keeps_it_at_least_128(
        controller, newest: int) -> None:
    tables = fabric(controller)
    client, service = PLAN.externals[0], PLAN.services[0]
    controller.gateways[GATEWAYS[1]].set_id(newest)
    tables.add(controller.current_rule(GATEWAYS[1]))
    sent = udp(client.ip, service.vip) | {"nw_ttl": 3}  # a TTL a stamp must not leave at 3
    trace = send_through(tables, controller, client.name, sent, GATEWAYS[1])
    assert trace.delivered_to is not None and code_of(trace.packet) == SPACE.to_wire(newest)
    assert 128 <= trace.packet["nw_ttl"] <= 131


def test_replies_leave_with_the_vip_as_source_without_crossing_a_gateway(controller) -> None:
    tables = fabric(controller)
    client = PLAN.externals[0]
    for host in PLAN.hosts:
        trace = tables.send_from(host.name, udp(host.dip, client.ip, sport=80, dport=5000))
        assert trace.delivered_to == client.name
        assert trace.packet["ipv4_src"] == PLAN.service(host.service).vip
        assert not set(trace.switches) & set(GATEWAYS)


def test_out_group_cannot_reach_a_dip_directly(controller) -> None:
    tables = fabric(controller)
    client = PLAN.externals[0]
    trace = tables.send_from(client.name, udp(client.ip, PLAN.hosts[0].dip))
    assert trace.delivered_to is None and trace.dropped_at == PLAN.switches_with("border")[0].name


def test_in_group_traffic_goes_directly_and_keeps_its_id(controller) -> None:
    tables = fabric(controller)
    for sender, receiver in itertools.permutations(PLAN.hosts, 2):
        sent = udp(sender.dip, receiver.dip, code=0x393, entropy=9)
        trace = tables.send_from(sender.name, sent)
        assert trace.delivered_to == receiver.name and code_of(trace.packet) == 0x393
        assert trace.packet["nw_ttl"] == sent["nw_ttl"], "the entropy arrives too"
        assert not set(trace.switches) & set(GATEWAYS) and not trace.to_controller


def test_in_group_traffic_to_a_vip_with_a_newer_id_is_copied_to_the_controller(
        controller) -> None:
    tables = fabric(controller)
    sender, service = PLAN.hosts[0], PLAN.services[1]
    newer = SPACE.to_wire(4)
    packet = udp(sender.dip, service.vip, sport=41000, code=newer)
    trace = send_through(tables, controller, sender.name, packet, GATEWAYS[1])
    assert code_of(trace.packet) == newer, "in-group packets are never restamped"
    assert [(s, t) for s, t, _ in trace.to_controller] == [(GATEWAYS[1], "observe")]
    same_id = tables.send_from(sender.name, dict(packet, **marks(SPACE.to_wire(0))),
                               via(GATEWAYS[1]))
    assert same_id.to_controller == []


def test_no_packet_loops_between_any_two_endpoints(controller) -> None:
    tables = fabric(controller)
    addresses = ([(h.name, h.dip) for h in PLAN.hosts] + [(x.name, x.ip) for x in PLAN.externals]
                 + [(None, s.vip) for s in PLAN.services] + [(None, "10.9.9.9")])
    for (sender, source), (_, destination) in itertools.product(addresses, repeat=2):
        if sender is None or source == destination:
            continue
        for bucket in range(len(GATEWAYS)):
            trace = tables.send_from(sender, udp(source, destination),
                                     lambda ports, packet, b=bucket: b)
            assert not trace.loop, (sender, destination, trace.switches)


def test_border_spreads_vip_traffic_over_every_gateway_unless_steered(controller) -> None:
    [spread] = [r for r in fabric_rules(PLAN) if any(isinstance(a, HashSpread) for a in r.actions)]
    border = PLAN.switches_with("border")[0].name
    assert spread.switch == border
    assert set(spread.actions[0].ports) == {PLAN.port_between(border, g) for g in GATEWAYS}
    steered = controller.steer(GATEWAYS[1])
    assert (steered.table, steered.priority, steered.match) == (spread.table, spread.priority,
                                                                 spread.match)
    assert steered.actions == (HashSpread((PLAN.port_between(border, GATEWAYS[1]),)),)
    assert controller.steer(None) == spread


def test_after_many_updates_only_ids_ahead_of_the_gateway_are_copied(controller) -> None:
    tables = fabric(controller)
    gateway = GATEWAYS[0]
    for snapshot_id in (1, 2, 3, 9, 300, 301):
        _, ops = controller.start_update(snapshot_id, now=float(snapshot_id))
        for op in ops:
            assert isinstance(op, ReplaceCurrent)
            tables.add(op.rule)
            assert controller.stamp_acked(op.rule.switch, now=snapshot_id + 0.5) == []
    sender, service = PLAN.hosts[0], PLAN.services[0]
    ahead_tos = {SPACE.to_wire(k) & 0xFF for k in range(302, 302 + SPACE.lead)}
    caught, spurious = set(), set()
    # every id a run may have while the gateway is at 301: within the window behind, up to
    # the lead ahead (the coordinator starts none further ahead of a gateway's)
    for full_id in range(max(0, 301 - SPACE.window), 301 + SPACE.lead + 1):
        packet = udp(sender.dip, service.vip, code=SPACE.to_wire(full_id))
        trace = tables.send_from(sender.name, packet, via(gateway))
        copied = bool([t for _, t, _ in trace.to_controller if t == "observe"])
        ahead = full_id > 301
        # the bitmap holds TOS bytes: a code ahead is copied, and so is one whose TOS byte
        # matches one ahead but whose TTL bits say an id at least 128 behind
        assert copied == (ahead or SPACE.to_wire(full_id) & 0xFF in ahead_tos), full_id
        (caught if ahead else spurious).update({SPACE.to_wire(full_id)} if copied else ())
    assert max(caught) >= 64, "ahead codes beyond the six DSCP bits are caught too"
    assert spurious, "the over-approximation shows"
    for code in spurious:  # the controller decodes the whole code and adopts nothing
        assert controller.on_ingroup_copy(gateway, code) == []
        assert controller.ids()[gateway] == 301


@settings(max_examples=60, deadline=None)
@given(current=st.integers(0, 5_000), step=st.integers(-SPACE.window, SPACE.lead),
       entropy=st.sampled_from(TTL_ENTROPY))
def test_the_observe_rules_copy_every_in_group_packet_truly_ahead_of_the_gateway(
        current: int, step: int, entropy: int) -> None:
    """The bitmap over-approximates (it holds TOS bytes only) but never misses: a packet
    whose id is up to the lead ahead of the gateway's reaches the controller, which adopts
    exactly that id; one behind or equal is either not copied or changes nothing."""
    controller = GatewayController(PLAN, SPACE)
    gateway = GATEWAYS[1]
    controller.gateways[gateway].restart(current)
    tables = FlowTables(PLAN, [op.rule for op in controller.on_connect(gateway)
                               if isinstance(op, Install)])
    sender, service = PLAN.hosts[0], PLAN.services[0]
    full_id = max(0, current + step)
    code = SPACE.to_wire(full_id)
    border = PLAN.switches_with("border")[0].name
    trace = tables.trace(gateway, PLAN.port_between(gateway, border),
                         udp(sender.dip, service.vip, code=code, entropy=entropy),
                         bucket=lambda ports, packet: 0, max_hops=1)
    copies = [seen for _, table, seen in trace.to_controller if table == "observe"]
    if full_id > current:
        assert copies, f"id {full_id} ahead of {current} was not copied"
    for seen in copies:
        controller.on_ingroup_copy(gateway, code_of(seen))
    assert controller.ids()[gateway] == max(current, full_id)


@settings(max_examples=15, deadline=None)
@given(spines=st.integers(1, 4), leaves=st.integers(1, 4), hosts_per_leaf=st.integers(1, 3),
       gateways=st.integers(1, 8), externals=st.integers(1, 3))
def test_every_shape_connects_everything_the_model_promises(
        spines: int, leaves: int, hosts_per_leaf: int, gateways: int, externals: int) -> None:
    plan = build_plan(DataCenterParams(spines=spines, leaves=leaves,
                                       hosts_per_leaf=hosts_per_leaf, gateways=gateways,
                                       externals=externals, relays=0))
    controller = GatewayController(plan)
    rules = [op.rule for s in plan.switches for op in controller.on_connect(s.name)
             if isinstance(op, Install)]
    tables = FlowTables(plan, rules)
    vip = plan.services[0].vip
    for sender, receiver in itertools.permutations(plan.hosts, 2):
        assert tables.send_from(sender.name, udp(sender.dip, receiver.dip)).delivered_to == (
            receiver.name)
    for host, client in itertools.product(plan.hosts, plan.externals):
        trace = tables.send_from(host.name, udp(host.dip, client.ip))
        assert trace.delivered_to == client.name and trace.packet["ipv4_src"] == vip
    for client in plan.externals:
        for index in range(gateways):
            trace = tables.send_from(client.name, udp(client.ip, vip),
                                     lambda ports, packet, i=index: i)
            [(switch, table, _)] = trace.to_controller
            assert (switch, table) == (plan.gateways[index].name, "balance")


def test_loss_rules_drop_a_share_of_in_group_datagrams_by_ttl_and_nothing_else() -> None:
    lossy = GatewayController(PLAN, SPACE, data_loss=0.05)
    tables = fabric(lossy)
    dropped = dropped_ttls(0.05)
    assert len(dropped) == 2 * 4 and lost_share(0.05) == 2 / 32, "two entropy values, any id"
    source, far = PLAN.hosts[0], PLAN.hosts[-1]
    lost = set()
    for code, entropy in itertools.product(range(1, 1024, 61), TTL_ENTROPY):
        trace = tables.send_from(source.name, udp(source.dip, far.dip, code=code,
                                                  entropy=entropy))
        assert (trace.delivered_to is None) == (trace.packet["nw_ttl"] in dropped), code
        assert trace.delivered_to is not None or trace.dropped_at == source.leaf
        if trace.delivered_to is None:
            lost.add(entropy)
    assert lost == {30, 31}, "the same entropy values are lost whatever id a datagram carries"
    client = PLAN.externals[0]
    for ttl in dropped:
        reply = tables.send_from(source.name, udp(source.dip, client.ip) | {"nw_ttl": ttl})
        assert reply.delivered_to == client.name, "only in-group -> in-group datagrams are lost"
    assert loss_rules(PLAN, 0.0) == [] and fabric(GatewayController(PLAN, SPACE)).send_from(
        source.name, udp(source.dip, far.dip) | {"nw_ttl": dropped[0]}).delivered_to == far.name
    with pytest.raises(ValueError):
        dropped_ttls(1.0)


def test_an_external_host_cannot_pass_for_an_in_group_node_or_a_vip(controller) -> None:
    """Spoofed in-group sources would cross a gateway unstamped, as in-group traffic."""
    tables = fabric(controller)
    client, service = PLAN.externals[0], PLAN.services[0]
    internet = PLAN.switches_with("internet")[0].name
    for spoofed in (PLAN.hosts[0].dip, service.vip, PLAN.externals[1].ip):
        trace = tables.send_from(client.name, udp(spoofed, service.vip, code=40),
                                 via(GATEWAYS[0]))
        assert trace.delivered_to is None and not trace.to_controller
        assert trace.dropped_at == internet, spoofed
