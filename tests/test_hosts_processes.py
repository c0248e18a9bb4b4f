"""The agent, relay and client as processes on loopback, with a fake or core-driven coordinator.

The address plan is the real one with in-group DIPs moved to 127.0.0.2x and
external hosts to 127.0.0.3x. Every process is started here and stopped by
its handle at teardown, on failure too.
"""

from __future__ import annotations

import dataclasses
import json
import signal
import time
from pathlib import Path

import pytest
from test_hosts_fakes import (
    CoreDriver,
    FakeCoordinator,
    Peer,
    Process,
    free_udp_port,
    wait_until,
)

from hosts import wire
from hosts.services.bank import BankConfig
from hosts.services.bank_invariant import check_invariant
from hosts.services.transfers import IdSet
from topologies.addressing import DataCenterParams, build_plan
from topologies.secret import SECRET_FILE, RunSecret


@pytest.fixture
def processes():
    started: list[Process] = []

    def start(*args: str) -> Process:
        process = Process(*args)
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


@pytest.fixture
def coordinator():
    fake = FakeCoordinator()
    yield fake
    fake.close()


@pytest.fixture(scope="module")
def plan_file(tmp_path_factory) -> Path:
    plan = build_plan(DataCenterParams(leaves=1, hosts_per_leaf=2, externals=2, relays=1,
                                       prefix="t"))
    plan = dataclasses.replace(
        plan,
        hosts=tuple(dataclasses.replace(h, dip=f"127.0.0.{21 + i}")
                    for i, h in enumerate(plan.hosts)),
        externals=tuple(dataclasses.replace(x, ip=f"127.0.0.{31 + i}")
                        for i, x in enumerate(plan.externals)),
    )
    path = tmp_path_factory.mktemp("plan") / "plan.json"
    path.write_text(plan.to_json())
    RunSecret.create(path.parent)  # beside it, as the data center keeps them
    return path


def secret_of(plan_file: Path) -> str:
    return str(plan_file.parent / SECRET_FILE)


@pytest.fixture
def data_port() -> int:
    """The agents' data port for one test (tests may run beside other runs of the suite)."""
    return free_udp_port("127.0.0.21", "127.0.0.22")


def agent(start, plan_file: Path, coordinator: FakeCoordinator, port: int, node: str,
          *extra: str):
    host, coordinator_port = coordinator.address
    return start("hosts.agent", "--plan", str(plan_file), "--secret-file", secret_of(plan_file),
                 "--node", node, "--port", str(port),
                 "--coordinator", f"{host}:{coordinator_port}", "--connect-timeout", "5", *extra)


def test_agent_is_ready_answers_notify_and_stops_on_request(
    processes, plan_file, coordinator, data_port
):
    process = agent(processes, plan_file, coordinator, data_port, "th1", "--service", "bank",
                    "--protocol", "beaver", "--rate", "0")
    ready = json.loads(process.line("ready", coordinator.poll).split(" ", 1)[1])
    assert ready["data"].startswith("127.0.0.21:") and ready["peers"] == ["th1", "th2"]
    wait_until(lambda: coordinator.of_type("hello"), "hello", coordinator.poll)

    coordinator.send("notify", snapshot_id=1)
    local = wait_until(lambda: coordinator.of_type("local"), "local snapshot", coordinator.poll)[0]
    assert local["state"]["balances"] == {"th1/0": 1000, "th1/1": 1000, "th1/2": 1000,
                                          "th1/3": 1000}
    coordinator.send("stop")
    assert process.wait() == 0
    assert any(line.startswith("stopped") for line in process.lines)
    coordinator.poll(0.1)
    assert coordinator.of_type("counters")


@pytest.mark.parametrize("ending", ["sigterm", "hang-up"])
def test_agent_exits_cleanly(processes, plan_file, coordinator, data_port, ending):
    process = agent(processes, plan_file, coordinator, data_port, "th2", "--service", "kv",
                    "--protocol", "lai-yang")
    process.line("ready", coordinator.poll)
    if ending == "sigterm":
        process.popen.send_signal(signal.SIGTERM)
    else:
        wait_until(lambda: coordinator.nodes(), "hello", coordinator.poll)
        coordinator.hang_up()
    assert process.wait() == 0


@pytest.mark.parametrize(
    ("extra", "complaint"),
    [(["--node", "nobody"], "nobody"), (["--node", "th1", "--peers", "th9"], "th9"),
     (["--node", "th1", "--report-interval", "0"], "--report-interval")],
)
def test_agent_refuses_bad_arguments(processes, plan_file, extra, complaint):
    process = processes("hosts.agent", "--plan", str(plan_file), "--service", "bank",
                        "--secret-file", secret_of(plan_file),
                        "--protocol", "beaver", "--coordinator", "127.0.0.1:1", *extra)
    assert process.wait() == 2
    stderr = process.popen.stderr.read().decode().strip().splitlines()
    assert len(stderr) == 1 and complaint in stderr[0]


def test_agent_without_coordinator_gives_up_after_its_timeout(processes, plan_file, data_port):
    unused = FakeCoordinator()
    address = unused.address
    unused.close()
    process = processes("hosts.agent", "--plan", str(plan_file), "--node", "th1",
                        "--secret-file", secret_of(plan_file), "--service", "bank",
                        "--protocol", "beaver", "--port", str(data_port),
                        "--coordinator", f"{address[0]}:{address[1]}", "--connect-timeout", "0.3")
    assert process.wait() == 1
    assert "no coordinator" in process.popen.stderr.read().decode()


def test_relay_delays_and_marks_the_chain_start(processes):
    target = Peer("127.0.0.40")
    try:
        relay = processes("hosts.relay", "--listen", f"127.0.0.41:{free_udp_port('127.0.0.41')}",
                          "--forward", f"{target.address[0]}:{target.address[1]}",
                          "--delay", "0.05")
        ready = relay.line("relay ready")
        assert "emulated in the relay process" in ready
        listening = wire.parse_address(ready.split()[2])
        sender = Peer("127.0.0.42")
        sent_at = time.monotonic()
        sender.send({"kind": "credit", "transfer": "x-1", "amount": 3, "sent_at": sent_at},
                    listening, code=9)
        message, code = target.receive(lambda: relay.read(0.01), "the relayed datagram")
        arrived = time.monotonic()
        sender.close()
        assert message == {"kind": "credit", "transfer": "x-1", "amount": 3,
                           "chain_started": sent_at}
        assert code == 0 and arrived - sent_at >= 0.05
        relay.popen.send_signal(signal.SIGTERM)
        assert relay.wait() == 0
        stopped = json.loads(relay.line("stopped").split(" ", 1)[1])
        assert stopped == {"received": 1, "forwarded": 1, "malformed": 0,
                           "malformed_by": {}}
    finally:
        target.close()


def test_client_loads_a_kv_agent_and_counts_replies(processes, plan_file, coordinator, data_port):
    process = agent(processes, plan_file, coordinator, data_port, "th1", "--service", "kv",
                    "--protocol", "beaver")
    data = json.loads(process.line("ready", coordinator.poll).split(" ", 1)[1])["data"]
    client = processes("hosts.client", "--vip", data, "--bind", "127.0.0.31",
                       "--rate", "200", "--duration", "0.3", "--keys", "5")
    assert client.wait(timeout=15) == 0
    summary = json.loads(client.line("summary").split(" ", 1)[1])
    assert summary["sent"] >= 40
    assert summary["replies"] == summary["from_vip"] == summary["sent"] and summary["lost"] == 0
    assert summary["latency_ms"]["p50"] is not None


def delivered(coordinator: FakeCoordinator, node: str, counter: str = "delivered") -> int:
    """The latest running total ``counter`` the agent of ``node`` reported."""
    return max((c[counter] for c in coordinator.of_type("counters", node)), default=0)


@pytest.mark.parametrize("protocol_name", ["lai-yang", "chandy-lamport"])
def test_bank_snapshots_assembled_by_the_core_are_consistent(
    processes, plan_file, coordinator, data_port, protocol_name
):
    """Two bank agents transfer money; the core coordinator takes three snapshots."""
    agents = [
        agent(processes, plan_file, coordinator, data_port, node, "--service", "bank",
              "--protocol", protocol_name, "--rate", "300", "--external-share", "0",
              "--report-interval", "0.05")
        for node in ("th1", "th2")
    ]
    wait_until(lambda: min(delivered(coordinator, "th1"), delivered(coordinator, "th2")) >= 5,
               "credits delivered at both nodes", coordinator.poll)
    driver = CoreDriver(coordinator, protocol_name, ["th1", "th2"])
    for _ in range(3):
        snapshot_id, _ = driver.start()
        driver.wait_complete(snapshot_id)
        snapshot = driver.core.assemble(snapshot_id)
        states = snapshot.states
        assert sum(len(IdSet(state["debited"])) for state in states.values()) > 0
        total = BankConfig().initial_total(2)
        assert check_invariant(states, snapshot.in_flight, total) == []
        held = sum(sum(state["balances"].values()) for state in states.values())
        moving = sum(record.message["amount"] for record in snapshot.in_flight)
        assert held + moving == total, "in-group only: no money outside the snapshot"
    for node in ("th1", "th2"):
        coordinator.send("stop", node)
    assert [process.wait() for process in agents] == [0, 0]


def test_lai_yang_misses_a_causal_chain_through_the_out_group_and_the_check_sees_it(
    processes, plan_file, coordinator, data_port
):
    """th1 snapshots, then pays th2 through the relay before th2 snapshots: an effect
    without its cause that no in-group mechanism can see (no gateway stamps the chain)."""
    relay_port = free_udp_port("127.0.0.32")
    relay = processes("hosts.relay", "--listen", f"127.0.0.32:{relay_port}",
                      "--forward", f"127.0.0.22:{data_port}", "--delay", "0",
                      "--secret-file", secret_of(plan_file))
    relay.line("relay ready")
    for node in ("th1", "th2"):
        agent(processes, plan_file, coordinator, data_port, node, "--service", "bank",
              "--protocol", "lai-yang", "--rate", "100", "--external-share", "1",
              "--relay-port", str(relay_port), "--report-interval", "0.05")
    wait_until(lambda: coordinator.nodes() == ["th1", "th2"], "both agents", coordinator.poll)
    driver = CoreDriver(coordinator, "lai-yang", ["th1", "th2"])
    snapshot_id, commands = driver.start(notify=False)
    assert [command.node for command in commands] == ["th1", "th2"]
    coordinator.send("notify", "th1", snapshot_id=snapshot_id)
    wait_until(lambda: coordinator.of_type("local", "th1"), "th1's local snapshot", driver.pump)
    chains = delivered(coordinator, "th2", "chain_count")
    wait_until(lambda: delivered(coordinator, "th2", "chain_count") >= chains + 20,
               "relayed credits at th2 after th1's snapshot", driver.pump)
    coordinator.send("notify", "th2", snapshot_id=snapshot_id)
    driver.wait_complete(snapshot_id)
    snapshot = driver.core.assemble(snapshot_id)
    violations = check_invariant(snapshot.states, snapshot.in_flight,
                                 BankConfig().initial_total(2))
    assert [v for v in violations if "th1.0>" in v and "debited nowhere" in v]
