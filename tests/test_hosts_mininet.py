"""Agents, a relay and a client inside the emulated data center (one network per module).

What loopback cannot show: bank credits relayed by an out-group host come
back through the VIP and a gateway, which stamps the gateway's snapshot id,
so raising the gateways' id makes the in-group snapshot with no ``notify``
at all, and the snapshot the core assembles keeps the bank invariant; the
relay's chain time reaches the coordinator; key-value replies reach external
clients from the VIP. The fake coordinator listens on the root namespace's
management address.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from test_hosts_fakes import CoreDriver, FakeCoordinator, Process, wait_until

from hosts.agent import RELAY_PORT, SERVICE_PORT
from hosts.services.bank import BankConfig
from hosts.services.bank_invariant import check_invariant
from testbed.network import DataCenter
from topologies.addressing import DataCenterParams
from topologies.claims import NamePool

pytestmark = pytest.mark.mininet

PARAMS = DataCenterParams(leaves=2, hosts_per_leaf=1, gateways=2, externals=2, relays=1)
NAMES = NamePool("h", "172.26.0.0/16")
"""Names and management subnet claimed free, so two runs of the suite can overlap."""
RELAY_DELAY = 0.005


@pytest.fixture(scope="module")
def dc(mininet_machine: None) -> Iterator[DataCenter]:
    with DataCenter(PARAMS, names=NAMES) as datacenter:
        yield datacenter


@pytest.fixture
def run(dc: DataCenter) -> Iterator[tuple[FakeCoordinator, Any]]:
    """A coordinator on the management network and a starter of processes in hosts."""
    coordinator = FakeCoordinator(dc.plan.root_mgmt_ip)
    dc.open_management(coordinator.address[1])
    started: list[Process] = []

    def start(host: str, *args: str) -> Process:
        process = Process(*args, launch=dc.host(host).popen)
        started.append(process)
        return process

    yield coordinator, start
    for process in started:
        process.stop()
    coordinator.close()


def start_agents(dc: DataCenter, coordinator: FakeCoordinator, start: Any,
                 *options: str) -> list[Process]:
    host, port = coordinator.address
    agents = [
        start(h.name, "hosts.agent", "--plan", str(dc.plan_file), "--node", h.name,
              "--secret-file", str(dc.secret_file),
              "--coordinator", f"{host}:{port}", "--report-interval", "0.1", *options)
        for h in dc.plan.hosts
    ]
    for agent in agents:
        agent.line("ready", coordinator.poll)
    names = sorted(h.name for h in dc.plan.hosts)
    wait_until(lambda: coordinator.nodes() == names, "every agent's hello", coordinator.poll)
    return agents


def stop_agents(coordinator: FakeCoordinator, agents: list[Process]) -> dict[str, Any]:
    """Stop every agent; returns each node's final counters."""
    nodes = coordinator.nodes()
    for node in nodes:
        coordinator.send("stop", node)
    assert [agent.wait() for agent in agents] == [0] * len(agents)
    wait_until(lambda: coordinator.closed == set(nodes), "agents to close their connections",
               coordinator.poll)
    return {n: m for n, m in coordinator.received if m["type"] == "counters"}


def test_gateway_id_reaches_the_bank_through_relayed_credits(dc: DataCenter, run) -> None:
    coordinator, start = run
    relay_host = next(x for x in dc.plan.externals if x.role == "relay")
    relay = start(relay_host.name, "hosts.relay",
                  "--listen", f"{relay_host.ip}:{RELAY_PORT}",
                  "--forward", f"{dc.plan.services[0].vip}:{SERVICE_PORT}",
                  "--delay", str(RELAY_DELAY),
                  "--netem-dev", dc.host(relay_host.name).defaultIntf().name,
                  "--secret-file", str(dc.secret_file))
    print(relay.line("relay ready"))
    agents = start_agents(dc, coordinator, start, "--service", "bank", "--protocol", "beaver",
                          "--rate", "40", "--external-share", "0.5")

    def chains() -> list[dict[str, Any]]:
        return [c for c in coordinator.of_type("counters") if c.get("chain_count")]

    counted = wait_until(chains, "a relayed credit at some backend", coordinator.poll)[-1]
    assert RELAY_DELAY <= counted["chain_min"] < 1.0
    assert coordinator.of_type("local") == [], "no snapshot before the gateways move"

    assert max(dc.controller.ids().values()) == 0, "a fresh data center's gateways stamp 0"
    nodes = coordinator.nodes()
    driver = CoreDriver(coordinator, "beaver", nodes,
                        gateways=tuple(g.name for g in dc.plan.gateways))
    snapshot_id, _updates = driver.start()
    update = dc.controller.set_id(snapshot_id)
    assert update.complete
    for gateway, timing in update.gateways.items():
        driver.core.gateway_acked(gateway, snapshot_id, timing.acked_at)  # no notify sent
    wait_until(
        lambda: {n for n, m in coordinator.received
                 if m["type"] == "local" and m["last_id"] >= snapshot_id} == set(nodes),
        f"every node's local snapshot {snapshot_id}, with no notify sent", driver.pump,
    )
    driver.wait_complete(snapshot_id)
    snapshot = driver.core.assemble(snapshot_id)
    assert check_invariant(snapshot.states, snapshot.in_flight,
                           BankConfig().initial_total(len(nodes))) == []
    final = stop_agents(coordinator, agents)
    print("final counters", json.dumps(final))
    assert all(c["rejected"] == 0 and c["malformed"] == 0 for c in final.values())
    assert sum(c["delivered"] for c in final.values()) >= sum(c["chain_count"]
                                                             for c in final.values()) > 0


def test_kv_clients_get_replies_from_the_vip(dc: DataCenter, run) -> None:
    coordinator, start = run
    agents = start_agents(dc, coordinator, start, "--service", "kv", "--protocol", "lai-yang",
                          "--rate", "20")
    client_host = next(x for x in dc.plan.externals if x.role == "client")
    client = start(client_host.name, "hosts.client",
                   "--vip", f"{dc.plan.services[0].vip}:{SERVICE_PORT}",
                   "--rate", "100", "--duration", "0.5", "--keys", "10")
    assert client.wait(timeout=20) == 0
    summary = json.loads(client.line("summary").split(" ", 1)[1])
    print("client summary", json.dumps(summary))
    assert summary["sent"] >= 40
    assert summary["replies"] == summary["from_vip"] == summary["sent"]
    stop_agents(coordinator, agents)
