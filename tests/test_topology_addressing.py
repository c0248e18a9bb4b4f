"""The address plan and the Mininet topology built from it (no network is created)."""

from __future__ import annotations

import ipaddress
import json

import pytest

from topologies.addressing import AddressPlan, DataCenterParams, build_plan
from topologies.datacenter import DataCenterTopo, main, topos

LARGEST = DataCenterParams(spines=4, leaves=8, hosts_per_leaf=8, gateways=8, externals=16,
                           relays=4, services=8, prefix="abcd")


def test_plan_survives_json() -> None:
    plan = build_plan(DataCenterParams(gateways=3, services=2))
    text = plan.to_json()
    assert AddressPlan.from_json(text) == plan
    document = json.loads(text)
    assert [g["name"] for g in document["gateways"]] == ["dcgw1", "dcgw2", "dcgw3"]
    assert document["root_mgmt_ip"] == "172.30.0.1"
    document["switches"][0]["role"] = "router"
    with pytest.raises(ValueError, match="unknown roles: \\['router'\\]"):
        AddressPlan.from_json(json.dumps(document))


def test_lookups_by_name_and_address() -> None:
    plan = build_plan(DataCenterParams())
    host = plan.hosts[-1]
    assert plan.host_by_dip(host.dip) == plan.host(host.name) == host
    assert plan.service_of_vip(plan.services[0].vip) == plan.service("svc1")
    assert plan.port_between(host.leaf, plan.switches_with("spine")[0].name) >= 1
    with pytest.raises(KeyError, match="no in-group host named 'nobody'"):
        plan.host("nobody")
    with pytest.raises(KeyError, match="no link"):
        plan.port_between(plan.hosts[0].leaf, plan.gateways[0].name)


@pytest.mark.parametrize("params", [DataCenterParams(), LARGEST])
def test_names_addresses_and_ports_are_unique_and_fit(params: DataCenterParams) -> None:
    plan = build_plan(params)
    names = ([h.name for h in plan.hosts] + [x.name for x in plan.externals]
             + [s.name for s in plan.switches] + [plan.mgmt_switch, plan.root_name])
    assert len(set(names)) == len(names)
    data = [h.dip for h in plan.hosts] + [x.ip for x in plan.externals]
    data += [s.vip for s in plan.services]
    assert len(set(data)) == len(data)
    macs = list(plan.arp_table().values())
    assert len(set(macs)) == len(macs)
    assert len({s.dpid for s in plan.switches}) == len(plan.switches)
    mgmt = ipaddress.IPv4Network(plan.mgmt_net)
    mgmt_ips = [plan.root_mgmt_ip] + [h.mgmt_ip for h in plan.hosts]
    mgmt_ips += [x.mgmt_ip for x in plan.externals]
    assert len(set(mgmt_ips)) == len(mgmt_ips)
    assert all(ipaddress.IPv4Address(ip) in mgmt for ip in mgmt_ips)
    ports: dict[str, list[int]] = {}
    for link in plan.links:
        ports.setdefault(link.a, []).append(link.a_port)
        ports.setdefault(link.b, []).append(link.b_port)
    for host in plan.hosts:
        ports.setdefault(host.leaf, []).append(host.port)
    for external in plan.externals:
        ports.setdefault(plan.switches_with("internet")[0].name, []).append(external.port)
    assert all(len(set(p)) == len(p) for p in ports.values())
    longest_interface = max(len(f"{name}-eth{max(p)}") for name, p in ports.items())
    assert longest_interface <= 15  # Linux interface names


def test_every_service_has_backends_and_roles_follow_the_parameters() -> None:
    plan = build_plan(DataCenterParams(leaves=2, hosts_per_leaf=3, services=2, externals=5,
                                       relays=2))
    assert sorted(b for s in plan.services for b in s.backends) == sorted(
        h.name for h in plan.hosts)
    assert [x.role for x in plan.externals] == ["client"] * 3 + ["relay"] * 2
    assert all(plan.service(h.service) for h in plan.hosts)


def test_invalid_parameters_give_one_error_naming_each_problem() -> None:
    params = DataCenterParams(gateways=0, spines=9, prefix="Bad!", mgmt_net="10.1.0.0/24")
    with pytest.raises(ValueError) as error:
        build_plan(params)
    message = str(error.value)
    for problem in ("gateways=0", "spines=9", "prefix='Bad!'", "overlaps"):
        assert problem in message
    with pytest.raises(ValueError, match="relays=3 exceeds externals=2"):
        DataCenterParams(externals=2, relays=3).validate()


def test_options_from_the_mn_command_line_are_typed_and_checked() -> None:
    assert DataCenterParams.from_options(gateways="4", prefix="z").gateways == 4
    with pytest.raises(ValueError, match="unknown colour"):
        DataCenterParams.from_options(colour="red")
    with pytest.raises(ValueError, match="not an integer"):
        DataCenterParams.from_options(gateways="many")


def test_mininet_topology_follows_the_plan() -> None:
    topo = topos["datacenter"](gateways=3, prefix="t")
    assert isinstance(topo, DataCenterTopo)
    plan = topo.plan
    assert set(topo.switches()) == {s.name for s in plan.switches} | {plan.mgmt_switch}
    assert set(topo.hosts()) == ({h.name for h in plan.hosts} | {x.name for x in plan.externals}
                                 | {plan.root_name})
    host = plan.hosts[0]
    info = topo.linkInfo(host.name, host.leaf)
    assert (info["node1"], info["port1"], info["port2"]) in {
        (host.name, 0, host.port), (host.leaf, host.port, 0)}
    assert topo.nodeInfo(plan.gateways[0].name)["protocols"] == "OpenFlow13"
    assert topo.nodeInfo(plan.gateways[0].name)["datapath"] == "user"
    assert topo.nodeInfo(plan.root_name)["inNamespace"] is False


def test_plan_writer_rejects_bad_options(tmp_path, capsys) -> None:
    assert main(["--write-plan", str(tmp_path / "p.json"), "gateways=99"]) == 2
    assert "gateways=99" in capsys.readouterr().err
    assert main(["--write-plan", str(tmp_path / "p.json"), "gateways=3"]) == 0
    assert len(AddressPlan.from_json((tmp_path / "p.json").read_text()).gateways) == 3
